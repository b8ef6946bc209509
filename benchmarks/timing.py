"""Timing whole commands, as a user waits for them."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
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
    return command_line(default).runs


def command_line(default: int = 10) -> argparse.Namespace:
    """``--runs N``, and ``--server``: measure smalt through `smalt server` (SMALT_URL)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=default)
    parser.add_argument("--server", action="store_true", help="run smalt's commands through `smalt server`")
    return parser.parse_args()


@contextlib.contextmanager
def smalt_server(env: dict[str, str]) -> Iterator[str]:
    """`smalt server` on the workspace of ``env``, on a free loopback port; its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    smalt = str(Path(sys.executable).with_name("smalt"))
    server = subprocess.Popen([smalt, "server", "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("smalt server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(10)


def isolated_environment(folder: str) -> dict[str, str]:
    """The process environment with a fresh workspace and home under ``folder``, and the CLI's
    agents in ``folder`` too (stopped when the benchmark ends: ``stop_agents``)."""
    agents = Path(folder) / "agents"
    _agent_folders.append(agents)
    return {**os.environ, "SMALT_WORKSPACE": str(Path(folder) / "ws"), "HOME": folder, "SMALT_AGENT_DIR": str(agents)}


_agent_folders: list[Path] = []


def wait_for_agent(env: dict[str, str], timeout_s: float = 60) -> None:
    """Until the CLI's agent of ``env`` serves (the first command started it)."""
    folder = Path(env["SMALT_AGENT_DIR"])
    deadline = time.monotonic() + timeout_s
    while not list(folder.glob("*.sock")):
        if time.monotonic() > deadline:
            raise SystemExit(f"no CLI agent started in {folder}")
        time.sleep(0.05)


@atexit.register
def stop_agents() -> None:
    """Stop the CLI agents the benchmark's commands started."""
    from smalt.cli.agent import stop_all

    for folder in _agent_folders:
        if folder.exists():
            stop_all(folder)
