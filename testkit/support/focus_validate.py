"""Run the FinOps Foundation's focus_validator (PyPI focus_validator 1.0.0) on
a curlew rollup.parquet and print the failed checks as JSON.

Usage: focus_validate.py VENV_PYTHON ROLLUP_PARQUET [COLUMN=VALUE]

What the validator needs, and why this script does it (see the README):
- It checks FOCUS 1.0 rules only (its versions are 0.5, 1.0-preview, 1.0).
- It checks decimal columns as float64 and fails Parquet DECIMAL: the money
  columns are handed to it as DOUBLE, in a copy (curlew's file is unchanged).
- It opens its currency table by a relative path: it runs from its
  site-packages folder.
- It exits 0 even when validation fails: its JUnit XML is parsed instead.
COLUMN=VALUE overwrites that column on the first row of the copy (how a test
shows the validator does catch a wrong value).

Prints {"tests": N, "failed": [check id, ...]} (check id = the JUnit suite
name's part before the first '-').
"""
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import duckdb

venv_python, rollup = sys.argv[1], sys.argv[2]
override = sys.argv[3] if len(sys.argv) > 3 else None

work = tempfile.mkdtemp(prefix="focus-validate-")
copy = os.path.join(work, "rollup.parquet")
src = f"read_parquet('{rollup}', hive_partitioning = false)"
cols = duckdb.sql(f"describe select * from {src}").fetchall()
select = []
for name, typ, *_ in cols:
    expr = f'"{name}"::DOUBLE' if typ.startswith("DECIMAL") else f'"{name}"'
    if override and override.split("=", 1)[0] == name:
        value = override.split("=", 1)[1].replace("'", "''")
        expr = f"""CASE WHEN row_number() OVER () = 1 THEN '{value}' ELSE "{name}" END"""
    select.append(f'{expr} AS "{name}"')
duckdb.sql(f"copy (select {', '.join(select)} from {src}) to '{copy}' (format parquet)")

site = subprocess.run(
    [venv_python, "-c", "import focus_validator, os; print(os.path.dirname(os.path.dirname(focus_validator.__file__)))"],
    check=True,
    capture_output=True,
    text=True,
).stdout.strip()
validator = os.path.join(os.path.dirname(venv_python), "focus-validator")
junit = os.path.join(work, "junit.xml")
run = subprocess.run(
    [validator, "--data-file", copy, "--validate-version", "1.0", "--output-type", "unittest", "--output-destination", junit],
    cwd=site,
    capture_output=True,
    text=True,
)
if run.returncode != 0 or not os.path.exists(junit):
    sys.exit(f"focus-validator crashed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
root = ET.parse(junit).getroot()
failed = sorted(
    {s.attrib["name"].split("-", 1)[0] for s in root.iter("testsuite") if any(True for _ in s.iter("failure"))}
)
print(json.dumps({"tests": int(root.attrib.get("tests", "0")), "failed": failed}))
