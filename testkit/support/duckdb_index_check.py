#!/usr/bin/env python3
"""Run the DuckDB SQL that `curlew::sql::duckdb` generates and check its total.

Usage: duckdb_index_check.py INDEX_PATH EXPECTED_BILLED_COST < generated.sql

Reads the generated statements from stdin, checks that they read INDEX_PATH,
runs them in an in-memory DuckDB, then queries the view `curlew_rollup`.
Prints {"billed_cost": "<sum of BilledCost>", "rows": <row count>} as JSON
(an empty view sums to "0"). Exits 1 with a message on stderr when the SQL
fails or the sum is not EXPECTED_BILLED_COST (compared as decimals), 2 on bad
usage or when the duckdb module is missing.
"""

import json
import sys
from decimal import Decimal, InvalidOperation


def fail(code, msg):
    print(f"duckdb_index_check: {msg}", file=sys.stderr)
    sys.exit(code)


def plain(d):
    """A decimal without exponent or trailing zeros."""
    d = d.normalize()
    return format(d, "f") if d != 0 else "0"


def main():
    if len(sys.argv) != 3:
        fail(2, "usage: duckdb_index_check.py INDEX_PATH EXPECTED_BILLED_COST < generated.sql")
    index, expected_s = sys.argv[1], sys.argv[2]
    try:
        expected = Decimal(expected_s)
    except InvalidOperation:
        fail(2, f"expected BilledCost {expected_s!r} is not a decimal number")
    try:
        import duckdb
    except ImportError:
        fail(2, "the duckdb module is missing: python3 -m pip install duckdb")

    sql = sys.stdin.read()
    if not sql.strip():
        fail(1, "no SQL on stdin")
    quoted = "'" + index.replace("'", "''") + "'"
    if f"read_text({quoted})" not in sql:
        fail(1, f"the SQL does not read the index {index!r} (expected read_text({quoted}))")

    con = duckdb.connect()
    try:
        con.execute(sql)
        total, rows = con.execute(
            'SELECT sum("BilledCost"), count(*) FROM curlew_rollup'
        ).fetchone()
    except duckdb.Error as e:
        fail(1, f"DuckDB {duckdb.__version__} failed on the generated SQL: {e}\n--- SQL ---\n{sql}")
    total = Decimal(0) if total is None else Decimal(total)
    print(json.dumps({"billed_cost": plain(total), "rows": rows}))
    if total != expected:
        fail(1, f"sum of BilledCost over the index {index!r} is {plain(total)}, expected {expected_s} ({rows} rows)")


if __name__ == "__main__":
    main()
