"""Wall times of `smalt --help` and `smalt data create`, as a user meets them.

Side by side in one run with the floor every Python CLI pays (`python -c pass`), as ratios, and
against issue 2's budget for `--help` (300 ms). Run: `make bench` (or
`.venv/bin/python benchmarks/cli_startup.py --runs 15`).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import isolated_environment, runs_from_command_line, timed

ROOT = Path(__file__).resolve().parents[1]
SMALT = str(Path(sys.executable).with_name("smalt"))
HELP_BUDGET_S = 0.300


def main() -> None:
    runs = runs_from_command_line()
    with tempfile.TemporaryDirectory() as tmp:
        env = isolated_environment(tmp)
        data = Path(tmp) / "iris.csv"
        data.write_bytes((ROOT / "examples" / "data" / "iris.csv").read_bytes())
        # Create the workspace first: its one-time set-up (migrations) is not what is measured.
        subprocess.run([SMALT, "workspace", "show"], env=env, check=True, stdout=subprocess.DEVNULL)
        rows = {
            "python -c pass (floor)": timed([sys.executable, "-c", "pass"], env, runs),
            "smalt --help": timed([SMALT, "--help"], env, runs),
            "smalt data create (local file)": timed(
                [SMALT, "data", "create", "--name", "iris", "--path", str(data), "--type", "uri_file"],
                env,
                runs,
            ),  # fmt: skip
            "smalt data show --label latest": timed(
                [SMALT, "data", "show", "--name", "iris", "--label", "latest"], env, runs
            ),
        }
    floor = statistics.median(rows["python -c pass (floor)"])
    print(f"{'command':36} {'median':>9} {'min':>9} {'x floor':>8}   ({runs} runs each)")
    for name, times in rows.items():
        median = statistics.median(times)
        print(f"{name:36} {median * 1000:7.0f}ms {min(times) * 1000:7.0f}ms {median / floor:8.1f}")
    help_median = statistics.median(rows["smalt --help"])
    verdict = "within" if help_median < HELP_BUDGET_S else "OVER"
    print(f"\nsmalt --help: {help_median * 1000:.0f} ms, {verdict} the {HELP_BUDGET_S * 1000:.0f} ms budget")


if __name__ == "__main__":
    main()
