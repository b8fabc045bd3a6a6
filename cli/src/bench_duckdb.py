"""DuckDB reference for `curlew bench`: the rollup of one legacy CUR file at
curlew's grain (day, payer, usage account, service code and name, region,
charge category, line item type, usage type, currency) with exact DECIMAL
sums of the measures curlew computes, including the amortized rule.

Usage: bench_duckdb.py FILE THREADS [OUT.parquet]. Prints
`BENCH <secs> <peak MB> <rows> <groups> <BilledCost> <EffectiveCost>`.

Every sum is consumed by the outer query: DuckDB's optimizer drops
aggregates nobody reads, so a query that only counted the groups would
compute no money at all. With OUT, the grouped rollup is written to a
zstd Parquet file instead (the same job as curlew's ingest) and the
totals are read back from it.
"""
import resource
import sys
import time

import duckdb

path, threads = sys.argv[1], int(sys.argv[2])
out = sys.argv[3] if len(sys.argv) > 3 else None
parquet = path.endswith(".parquet")


def col(csv_name):
    """A legacy CUR column: `lineItem/UsageType` in CSV, `line_item_usage_type` in Parquet."""
    if not parquet:
        return f'"{csv_name}"'
    cat, name = csv_name.split("/")
    snake = lambda s: "".join("_" + c.lower() if c.isupper() else c for c in s).lstrip("_")
    return f"{snake(cat)}_{snake(name)}"


def money(csv_name):
    c = col(csv_name)
    return f"COALESCE(TRY_CAST({c} AS DECIMAL(38,18)), 0)" if not parquet else f"COALESCE(CAST({c} AS DECIMAL(38,18)), 0)"


lit = col("lineItem/LineItemType")
start = col("lineItem/UsageStartDate")
day = f"substr(CAST({start} AS VARCHAR), 1, 10)"
unblended = money("lineItem/UnblendedCost")
net = money("lineItem/NetUnblendedCost")
effective = f"""CASE {lit}
  WHEN 'SavingsPlanCoveredUsage' THEN {money('savingsPlan/SavingsPlanEffectiveCost')}
  WHEN 'SavingsPlanRecurringFee' THEN {money('savingsPlan/TotalCommitmentToDate')} - {money('savingsPlan/UsedCommitment')}
  WHEN 'SavingsPlanNegation' THEN 0
  WHEN 'SavingsPlanUpfrontFee' THEN 0
  WHEN 'DiscountedUsage' THEN {money('reservation/EffectiveCost')}
  WHEN 'RIFee' THEN {money('reservation/UnusedAmortizedUpfrontFeeForBillingPeriod')} + {money('reservation/UnusedRecurringFee')}
  WHEN 'Fee' THEN CASE WHEN COALESCE({col('reservation/ReservationARN')}, '') <> '' THEN 0 ELSE {unblended} END
  WHEN 'Refund' THEN CASE WHEN {col('lineItem/ProductCode')} = 'ComputeSavingsPlans' THEN 0 ELSE {unblended} END
  ELSE {unblended} END"""
category = f"""CASE {lit} WHEN 'Tax' THEN 'Tax'
  WHEN 'Credit' THEN 'Adjustment' WHEN 'Refund' THEN 'Adjustment'
  WHEN 'RIFee' THEN 'Purchase' WHEN 'SavingsPlanRecurringFee' THEN 'Purchase'
  WHEN 'SavingsPlanUpfrontFee' THEN 'Purchase' WHEN 'Fee' THEN 'Purchase'
  ELSE 'Usage' END"""
keys = [
    day,
    col("bill/PayerAccountId"),
    col("lineItem/UsageAccountId"),
    col("lineItem/ProductCode"),
    col("product/ProductName"),
    col("product/region"),
    category,
    lit,
    col("lineItem/UsageType"),
    col("lineItem/CurrencyCode"),
]
source = f"read_parquet('{path}')" if parquet else f"read_csv('{path}', header=true, all_varchar=true)"
grouped = f"""
  SELECT {', '.join(f'{k} AS k{i}' for i, k in enumerate(keys))},
    count(*) AS n,
    sum({net}) AS billed, sum({effective}) AS effective,
    sum({money('pricing/publicOnDemandCost')}) AS list,
    sum({unblended}) AS unblended, sum({net}) AS net_unblended,
    sum({money('lineItem/BlendedCost')}) AS blended,
    sum({money('lineItem/UsageAmount')}) AS usage
  FROM {source}
  GROUP BY ALL"""
totals = """count(*), sum(n), sum(billed), sum(effective), sum(list), sum(unblended),
  sum(net_unblended), sum(blended), sum(usage)"""
con = duckdb.connect()
con.execute(f"SET threads={threads}")
t = time.perf_counter()
if out:
    con.execute(f"COPY ({grouped}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
    secs = time.perf_counter() - t
    r = con.execute(f"SELECT {totals} FROM read_parquet('{out}')").fetchone()
else:
    r = con.execute(f"SELECT {totals} FROM ({grouped})").fetchone()
    secs = time.perf_counter() - t
groups, rows, billed, effective = r[0], r[1], r[2], r[3]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"BENCH {secs:.4f} {peak:.1f} {rows} {groups} {billed} {effective}")
