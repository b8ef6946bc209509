"""A process that starts many detached children (a pipeline's driver) keeps one forked ahead of
need: the next start hands its work to that spare, which was forked and warmed while nothing
waited for it. A spare that died costs only speed, and none outlives the process that made it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from smalt.execution import pid_alive

WORK = """
import os, sys
from pathlib import Path

def main(argv):
    Path(argv[1], "ran-" + argv[0]).write_text(str(os.getpid()))
    print("ran", argv[0])
    return 0
"""

STARTER = """
import json, os, signal, sys, time
from pathlib import Path
from smalt.execution import detached

out = Path(sys.argv[1])
sys.path.insert(0, str(out))

def warm():
    (out / f"warm-{os.getpid()}").touch()

def spare():
    return detached._spares._child[0]

def start(name):
    detached.start("work", [name, str(out)], out / "log.txt")

detached.keep_spare(warm=warm)
start("a")                      # no spare yet: forked as before, and a spare forked after it
first_spare = spare()
start("b")                      # handed to that spare
second_spare = spare()
os.kill(second_spare, signal.SIGKILL)
time.sleep(0.2)
start("c")                      # the spare died: forked as before
print(json.dumps({"first_spare": first_spare, "second_spare": second_spare, "last_spare": spare()}))
"""


def _until(check: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_starts_go_to_the_warm_spare_and_none_outlives_its_parent(tmp_path: Path) -> None:
    (tmp_path / "work.py").write_text(WORK)
    done = subprocess.run([sys.executable, "-c", STARTER, str(tmp_path)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(tmp_path)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    pids = json.loads(done.stdout)
    assert _until(lambda: all((tmp_path / f"ran-{n}").exists() for n in "abc")), list(tmp_path.iterdir())
    ran = {n: int((tmp_path / f"ran-{n}").read_text()) for n in "abc"}

    # b ran in the spare forked (and warmed) after a was started, before b was asked for.
    assert ran["b"] == pids["first_spare"]
    assert (tmp_path / f"warm-{pids['first_spare']}").exists()
    # The spare killed before c: c ran in a child forked for it, not in the dead one.
    assert ran["c"] not in (pids["second_spare"], pids["first_spare"])
    assert len(set(ran.values())) == 3
    assert (tmp_path / "log.txt").read_text().split("\n").count("ran b") == 1
    # The last spare, left waiting, leaves with its parent.
    assert _until(lambda: not pid_alive(pids["last_spare"])), "a spare outlived the process that forked it"
