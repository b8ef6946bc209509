"""Split the iris CSV into a training and a test file (every fifth row is kept for testing)."""

import argparse
import csv
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

with open(args.data, newline="") as handle:
    rows = list(csv.DictReader(handle))
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
for name, part in (("train.csv", [r for i, r in enumerate(rows) if i % 5]), ("test.csv", rows[::5])):
    with open(out / name, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(part)
print(f"{len(rows)} rows split into train and test")
