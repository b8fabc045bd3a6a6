#!/usr/bin/env python3
"""Independent expected values for AWS billing sample files (pure Python + pyarrow)."""
import csv
import math
from collections import defaultdict, Counter
from decimal import Decimal

CUR_CSV = "/work/shared/data/cur1-csv-anonymised/sample-anonymous-aws-export-dataset.csv"
FOCUS_CSV = "/work/shared/data/focus-1.0-sample/focus_sample.csv"
PARQ = "/work/shared/data/cur1-parquet-workshop/year=2018/month=10/Oct2018-WorkshopCUR-00001.snappy.parquet"
SCHEMA_OUT = "/tmp/research/parquet_schema.txt"


def dec(s):
    s = (s or "").strip()
    if s == "":
        return None
    return Decimal(s)


def ndp(s):
    s = (s or "").strip()
    if "e" in s.lower():
        d = Decimal(s)
        return max(0, -d.as_tuple().exponent)
    return len(s.split(".", 1)[1]) if "." in s else 0


# ---------------------------------------------------------------- A + D
def part_a():
    print("=" * 70)
    print("A. CUR CSV:", CUR_CSV)
    raw = open(CUR_CSV, "rb").read()
    print("BOM:", raw.startswith(b"\xef\xbb\xbf"))
    print("CRLF present:", b"\r\n" in raw, "| any CR:", b"\r" in raw)
    print("ends with newline:", raw.endswith(b"\n"))
    with open(CUR_CSV, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    header, data = rows[0], rows[1:]
    print("data rows:", len(data))
    print("columns:", len(header))
    bad = [i for i, r in enumerate(data) if len(r) != len(header)]
    print("rows with wrong field count:", len(bad))
    idx = {h: i for i, h in enumerate(header)}
    money = ["lineItem/UnblendedCost", "lineItem/BlendedCost", "lineItem/UsageAmount",
             "pricing/publicOnDemandCost", "lineItem/NetUnblendedCost"]
    money = [c for c in money if c in idx]
    print("summed columns present:", money)
    print("absent:", [c for c in ["pricing/publicOnDemandCost", "lineItem/NetUnblendedCost"] if c not in idx])
    per = defaultdict(lambda: defaultdict(Decimal))
    cnt = Counter()
    tot = defaultdict(Decimal)
    empties = Counter()
    maxdp = Counter()
    for r in data:
        t = r[idx["lineItem/LineItemType"]]
        cnt[t] += 1
        for c in money:
            v = r[idx[c]]
            maxdp[c] = max(maxdp[c], ndp(v))
            d = dec(v)
            if d is None:
                empties[c] += 1
                continue
            per[t][c] += d
            tot[c] += d
    for t in sorted(cnt):
        print(f"  type={t!r} rows={cnt[t]}")
        for c in money:
            print(f"    {c} = {per[t][c]}")
    print("  OVERALL:")
    for c in money:
        print(f"    {c} = {tot[c]}")
    print("max decimal places per summed column:", dict(maxdp))
    print("max decimal places overall (summed money cols):", max(maxdp.values()))
    print("empty value counts in summed cols:", dict(empties) or "none")
    # other money-ish columns' dp
    other_money = [h for h in header if h.startswith(("lineItem/", "pricing/", "reservation/", "savingsPlan/"))
                   and any(k in h for k in ("Cost", "Fee", "Rate", "Amount", "Commitment", "Value"))]
    dp2 = {}
    for c in other_money:
        m = 0
        e = 0
        for r in data:
            v = r[idx[c]]
            if v.strip() == "":
                e += 1
                continue
            try:
                Decimal(v)
                m = max(m, ndp(v))
            except Exception:
                m = "non-numeric"
                break
        dp2[c] = (m, e)
    print("other money-like columns (max dp, empty count):")
    for c, (m, e) in dp2.items():
        print(f"    {c}: maxdp={m} empty={e}")
    print("any empty cell anywhere in file:", any(v == "" for r in data for v in r))
    print("distinct lineItem/UsageAccountId:", len({r[idx['lineItem/UsageAccountId']] for r in data}))
    print("distinct bill/PayerAccountId:", len({r[idx['bill/PayerAccountId']] for r in data}),
          sorted({r[idx['bill/PayerAccountId']] for r in data}))
    print("distinct bill/BillingPeriodStartDate:", sorted({r[idx['bill/BillingPeriodStartDate']] for r in data}))
    for c in ["reservation/EffectiveCost", "savingsPlan/SavingsPlanEffectiveCost", "reservation/ReservationARN",
              "savingsPlan/TotalCommitmentToDate", "savingsPlan/UsedCommitment",
              "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod", "reservation/UnusedRecurringFee"]:
        print(f"  column exists {c}: {c in idx}")
    print("sample lineItem/UsageStartDate:", data[0][idx["lineItem/UsageStartDate"]])

    # D. CUDOS amortized
    print("-" * 70)
    print("D. CUR CSV CUDOS amortized cost")

    def g(r, c):
        if c not in idx:
            return None
        return dec(r[idx[c]])

    am = Decimal(0)
    am_per = defaultdict(Decimal)
    for r in data:
        t = r[idx["lineItem/LineItemType"]]
        arn = r[idx["reservation/ReservationARN"]].strip() if "reservation/ReservationARN" in idx else ""
        if t == "DiscountedUsage":
            v = g(r, "reservation/EffectiveCost") or Decimal(0)
        elif t == "RIFee":
            v = (g(r, "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod") or Decimal(0)) + \
                (g(r, "reservation/UnusedRecurringFee") or Decimal(0))
        elif t == "Fee" and arn != "":
            v = Decimal(0)
        else:
            v = g(r, "lineItem/UnblendedCost") or Decimal(0)
        am += v
        am_per[t] += v
    print("  per type:", {k: str(v) for k, v in sorted(am_per.items())})
    print("  CUDOS amortized total =", am)
    print("  equals unblended total:", am == tot["lineItem/UnblendedCost"])


# ---------------------------------------------------------------- B
def part_b():
    print("=" * 70)
    print("B. FOCUS CSV:", FOCUS_CSV)
    raw = open(FOCUS_CSV, "rb").read()
    print("BOM:", raw.startswith(b"\xef\xbb\xbf"), "| CRLF:", b"\r\n" in raw)
    with open(FOCUS_CSV, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    header, data = rows[0], rows[1:]
    idx = {h: i for i, h in enumerate(header)}
    print("data rows:", len(data), "| columns:", len(header))
    print("rows with wrong field count:", sum(1 for r in data if len(r) != len(header)))
    pn = Counter(r[idx["ProviderName"]] for r in data)
    print("ProviderName counts:", dict(pn))
    cols = ["BilledCost", "EffectiveCost", "ListCost", "ContractedCost"]

    def d(v):
        if v == "NULL" or v.strip() == "":
            return None
        return Decimal(v)

    def summarize(rs, label):
        tot = {c: Decimal(0) for c in cols}
        nulls = Counter()
        for r in rs:
            for c in cols:
                x = d(r[idx[c]])
                if x is None:
                    nulls[c] += 1
                else:
                    tot[c] += x
        print(f"  {label}: rows={len(rs)}")
        for c in cols:
            print(f"    {c} = {tot[c]}  (nulls={nulls[c]})")
        return tot

    aws = [r for r in data if r[idx["ProviderName"]] == "AWS"]
    non = [r for r in data if r[idx["ProviderName"]] != "AWS"]
    print("AWS rows (ProviderName == 'AWS' exact):", len(aws))
    cc = Counter(r[idx["ChargeCategory"]] for r in aws)
    for k in sorted(cc):
        summarize([r for r in aws if r[idx["ChargeCategory"]] == k], f"AWS ChargeCategory={k!r}")
    summarize(aws, "AWS OVERALL")
    summarize(non, "NON-AWS OVERALL")
    summarize(data, "ALL ROWS OVERALL")
    print("distinct SubAccountId (AWS):", len({r[idx['SubAccountId']] for r in aws}))
    print("BillingPeriodStart values (all):", dict(Counter(r[idx["BillingPeriodStart"]] for r in data)))
    print("BillingPeriodStart values (AWS):", dict(Counter(r[idx["BillingPeriodStart"]] for r in aws)))
    mdp = {c: max(ndp(r[idx[c]]) for r in data if d(r[idx[c]]) is not None) for c in cols}
    print("max decimal places:", mdp)


# ---------------------------------------------------------------- C
def part_c():
    import pyarrow.parquet as pq
    import pyarrow.compute as pc
    print("=" * 70)
    print("C. Parquet:", PARQ)
    pf = pq.ParquetFile(PARQ)
    md = pf.metadata
    lines = []
    for i in range(md.num_columns):
        col = md.schema.column(i)
        lines.append(f"{col.name}\tphysical={col.physical_type}\tlogical={col.logical_type}\tconverted={col.converted_type}")
    arrow_schema = pf.schema_arrow
    with open(SCHEMA_OUT, "w") as f:
        f.write(f"# {PARQ}\n# num_columns={md.num_columns} num_rows={md.num_rows} num_row_groups={md.num_row_groups}\n")
        f.write("# created_by=" + str(md.created_by) + "\n")
        f.write("## Parquet physical/logical schema\n")
        f.write("\n".join(lines) + "\n")
        f.write("## Arrow schema\n")
        for fld in arrow_schema:
            f.write(f"{fld.name}\t{fld.type}\tnullable={fld.nullable}\n")
    print("schema written to", SCHEMA_OUT)
    print("columns:", md.num_columns, "| rows:", md.num_rows, "| row groups:", md.num_row_groups)
    t = pf.read()
    names = set(t.column_names)
    want = ["line_item_unblended_cost", "line_item_blended_cost", "line_item_usage_amount",
            "pricing_public_on_demand_cost", "reservation_effective_cost",
            "reservation_unused_amortized_upfront_fee_for_billing_period", "reservation_unused_recurring_fee"]
    present = [c for c in want if c in names]
    print("summed columns present:", present, "| absent:", [c for c in want if c not in names])
    for c in present:
        print(f"  type {c}: {t.schema.field(c).type}")
    cols = {c: t.column(c).to_pylist() for c in names if c in present or c in (
        "line_item_line_item_type", "reservation_reservation_a_r_n", "line_item_usage_account_id",
        "bill_payer_account_id", "line_item_product_code", "product_region", "product_region_code",
        "product_location", "line_item_usage_start_date", "bill_billing_period_start_date")}
    types = cols["line_item_line_item_type"]
    n = len(types)
    groups = defaultdict(list)
    for i, ty in enumerate(types):
        groups[ty].append(i)

    def fnum(x):
        return 0.0 if x is None else float(x)

    def show(label, idxs):
        print(f"  {label}: rows={len(idxs)}")
        for c in present:
            vals = cols[c]
            nn = sum(1 for i in idxs if vals[i] is None)
            s = math.fsum(fnum(vals[i]) for i in idxs)
            naive = 0.0
            for i in idxs:
                naive += fnum(vals[i])
            print(f"    {c}: fsum={s!r} round10={round(s, 10):.10f} naive_sum={naive!r} nulls={nn}")

    for ty in sorted(groups, key=lambda x: (x is None, x)):
        show(f"type={ty!r}", groups[ty])
    show("OVERALL", list(range(n)))

    # CUDOS amortized
    arn = cols.get("reservation_reservation_a_r_n", [None] * n)

    def gv(c, i):
        if c not in cols:
            return 0.0
        return fnum(cols[c][i])

    am_vals = []
    per = defaultdict(list)
    for i in range(n):
        ty = types[i]
        if ty == "DiscountedUsage":
            v = gv("reservation_effective_cost", i)
        elif ty == "RIFee":
            v = gv("reservation_unused_amortized_upfront_fee_for_billing_period", i) + \
                gv("reservation_unused_recurring_fee", i)
        elif ty == "Fee" and (arn[i] or "").strip() != "":
            v = 0.0
        else:
            v = gv("line_item_unblended_cost", i)
        am_vals.append(v)
        per[ty].append(v)
    for ty in sorted(per, key=lambda x: (x is None, x)):
        s = math.fsum(per[ty])
        print(f"  CUDOS amortized type={ty!r}: fsum={s!r} round10={round(s, 10):.10f}")
    s = math.fsum(am_vals)
    naive = 0.0
    for v in am_vals:
        naive += v
    print(f"  CUDOS amortized TOTAL: fsum={s!r} round10={round(s, 10):.10f} naive_sum={naive!r}")
    # Note on RIFee component sums
    fee_arn = sum(1 for i in groups.get("Fee", []) if (arn[i] or "").strip() != "")
    print("  Fee rows with non-empty reservation ARN:", fee_arn, "of", len(groups.get("Fee", [])))

    for c in ["line_item_usage_account_id", "bill_payer_account_id", "line_item_product_code",
              "product_region", "product_region_code", "product_location"]:
        if c in cols:
            vals = cols[c]
            dist = set(vals)
            dist_nonempty = {v for v in dist if v not in (None, "")}
            print(f"  distinct {c}: {len(dist)} (incl null/empty) / {len(dist_nonempty)} non-empty;"
                  f" nulls={sum(1 for v in vals if v is None)} empties={sum(1 for v in vals if v == '')}")
        else:
            print(f"  column {c}: absent")
    print("  payer ids:", sorted(x for x in set(cols["bill_payer_account_id"]) if x is not None))
    for c in ["line_item_usage_start_date", "bill_billing_period_start_date"]:
        f = t.schema.field(c)
        vals = cols[c]
        print(f"  {c}: arrow type={f.type}; sample={vals[0]!r}; distinct={len(set(vals))}"
              + (f"; values={sorted(set(map(str, vals)))}" if len(set(vals)) < 5 else ""))
    print("  line_item_line_item_type distinct:", dict(Counter(types)))


if __name__ == "__main__":
    part_a()
    part_b()
    part_c()
