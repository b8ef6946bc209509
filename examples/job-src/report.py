"""Read a summary written by summarize.py and report the most common species."""

import argparse
import json
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--summary", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

counts = json.loads(Path(args.summary, "summary.json").read_text())
top = max(counts, key=counts.get)
print(f"most rows: {top} ({counts[top]} of {sum(counts.values())})")
Path(args.out, "report.txt").write_text(f"{top}\n")
