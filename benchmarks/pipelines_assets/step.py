"""A trivial pipeline step: read every file of its inputs (files or folders), write one small file.

Run: `python step.py [--inp PATH ...] --out FOLDER [--part NAME]`; writes FOLDER/data.txt (its inputs' text plus
one line). With STEP_TRACE set, appends FOLDER to that file: the benchmark counts the steps that ran.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def run(inputs: list[str], out: str, part: str = "") -> None:
    files = [file for i in map(Path, inputs) for file in (sorted(i.rglob("*")) if i.is_dir() else [i])]
    text = "".join(file.read_text() for file in files if file.is_file())
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "data.txt").write_text(text + f"{part}: {len(inputs)} inputs\n")
    if trace := os.environ.get("STEP_TRACE"):
        with open(trace, "a") as log:
            log.write(out + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--inp", action="append", default=[])
    parser.add_argument("--out", required=True)
    parser.add_argument("--part", default="", help="the step's name: steps of one shape differ, as shards do")
    args = parser.parse_args()
    run(args.inp, args.out, args.part)
