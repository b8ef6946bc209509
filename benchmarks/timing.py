"""Timing whole commands, as a user waits for them."""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path


def timed(cmd: list[str], env: dict[str, str], runs: int) -> list[float]:
    """Wall seconds of ``runs`` runs of ``cmd`` (output discarded; a failure stops the benchmark)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def runs_from_command_line(default: int = 10) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=default)
    return int(parser.parse_args().runs)


def isolated_environment(folder: str) -> dict[str, str]:
    """The process environment with a fresh workspace and home under ``folder``."""
    return {**os.environ, "SMALT_WORKSPACE": str(Path(folder) / "ws"), "HOME": folder}
