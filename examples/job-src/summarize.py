"""Count the rows per species of a CSV file and write them as JSON into an output folder."""

import argparse
import csv
import json
import os
from collections import Counter
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--greeting", default="hello")
parser.add_argument("--limit", type=int, default=None)
parser.add_argument("--out", required=True)
args = parser.parse_args()

with open(args.data, newline="") as handle:
    rows = list(csv.DictReader(handle))[: args.limit]
counts = Counter(row["species"] for row in rows)
print(f"{args.greeting}: {len(rows)} rows, {len(counts)} species (run {os.environ.get('AZUREML_RUN_ID')})")
Path(args.out, "summary.json").write_text(json.dumps(dict(counts), indent=2))
Path("outputs").mkdir(exist_ok=True)
Path("outputs", "counts.txt").write_text("\n".join(f"{k} {v}" for k, v in counts.items()))
