"""DuckDB reference for `curlew bench`: the rollup of one legacy CUR file at
curlew's grain (day, payer, usage account, service code and name, region,
charge category, line item type, usage type, currency) with exact DECIMAL
sums of the measures curlew computes, including the amortized rule.

Usage: bench_duckdb.py FILE THREADS. Prints `BENCH <secs> <peak MB> <rows> <groups>`.
"""
import resource
import sys
import time

import duckdb

path, threads = sys.argv[1], int(sys.argv[2])
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
  ELSE {unblended} END"""
category = f"""CASE {lit} WHEN 'Tax' THEN 'Tax'
  WHEN 'Credit' THEN 'Credit' WHEN 'Refund' THEN 'Credit' WHEN 'EdpDiscount' THEN 'Credit'
  WHEN 'RIFee' THEN 'Purchase' WHEN 'SavingsPlanRecurringFee' THEN 'Purchase' WHEN 'Fee' THEN 'Purchase'
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
query = f"""
SELECT count(*) AS groups, sum(n) AS rows FROM (
  SELECT {', '.join(f'{k} AS k{i}' for i, k in enumerate(keys))},
    count(*) AS n,
    sum({net}) AS billed, sum({effective}) AS effective,
    sum({money('pricing/publicOnDemandCost')}) AS list,
    sum({unblended}) AS unblended, sum({net}) AS net_unblended,
    sum({money('lineItem/BlendedCost')}) AS blended,
    sum({money('lineItem/UsageAmount')}) AS usage
  FROM {source}
  GROUP BY ALL
)"""
con = duckdb.connect()
con.execute(f"SET threads={threads}")
t = time.perf_counter()
groups, rows = con.execute(query).fetchone()
secs = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"BENCH {secs:.4f} {peak:.1f} {rows} {groups}")
