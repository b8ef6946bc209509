"""Wall times of `smalt --help`, `smalt data create` and `smalt data show`, as a user meets them:
with the CLI's agent warm (every command after the first), and with it turned off (SMALT_AGENT=0,
each command importing smalt itself, as the first command does).

Side by side in one run with the floor every Python CLI pays (`python -c pass`), as ratios, and
against the budgets: `--help` 300 ms (issue 2), every command's floor 150 ms (issue 19). Run:
`make bench` (or `.venv/bin/python benchmarks/cli_startup.py --runs 15`).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import isolated_environment, runs_from_command_line, timed, wait_for_agent

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
        wait_for_agent(env)
        create = [SMALT, "data", "create", "--name", "iris", "--path", str(data), "--type", "uri_file"]
        show = [SMALT, "data", "show", "--name", "iris", "--label", "latest"]
        rows: dict[str, list[float]] = {}
        for label, agent in (("", "1"), (", SMALT_AGENT=0", "0")):
            run_env = {**env, "SMALT_AGENT": agent}
            rows[f"smalt --help{label}"] = timed([SMALT, "--help"], run_env, runs)
            rows[f"smalt data create (local file){label}"] = timed(create, run_env, runs)
            rows[f"smalt data show --label latest{label}"] = timed(show, run_env, runs)
        rows = {"python -c pass (floor)": timed([sys.executable, "-c", "pass"], env, runs), **rows}
    floor = statistics.median(rows["python -c pass (floor)"])
    print(f"{'command':50} {'median':>9} {'min':>9} {'x floor':>8}   ({runs} runs each)")
    for name, times in rows.items():
        median = statistics.median(times)
        print(f"{name:50} {median * 1000:7.0f}ms {min(times) * 1000:7.0f}ms {median / floor:8.1f}")
    help_median = statistics.median(rows["smalt --help"])
    verdict = "within" if help_median < HELP_BUDGET_S else "OVER"
    print(f"\nsmalt --help: {help_median * 1000:.0f} ms, {verdict} the {HELP_BUDGET_S * 1000:.0f} ms budget")


if __name__ == "__main__":
    main()
