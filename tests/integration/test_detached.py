"""A multithreaded process (a notebook, `smalt server`) starts supervisors from its fork server: warm,
with the environment it has at the time of each submission, and still when the fork server died."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smalt import command
from smalt.execution import detached


@pytest.fixture
def threaded() -> Iterator[None]:
    """This process with a second thread, as a notebook or a server has: it must not fork itself."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run(ml_client: Any, line: str) -> tuple[str, str]:
    job = ml_client.jobs.create_or_update(command(command=line))
    out = io.StringIO()
    finished = ml_client.jobs.stream(job.name, out=out)
    return finished.status, out.getvalue()


def test_jobs_start_from_the_fork_server_with_the_environment_of_their_submission(
    ml_client: Any, threaded: None, monkeypatch: pytest.MonkeyPatch, workspace_path: Path
) -> None:
    assert threading.active_count() > 1
    assert run(ml_client, "echo first") == ("Completed", "first\n")
    server = detached._server._process
    assert server is not None and server.poll() is None  # the fork server is up and serves the next ones
    monkeypatch.setenv("LATE_SETTING", "seen")
    assert run(ml_client, 'echo "late: $LATE_SETTING"') == ("Completed", "late: seen\n")

    server.kill()
    server.wait()
    # Its loss costs only speed: a new fork server starts the next jobs.
    assert run(ml_client, "echo after") == ("Completed", "after\n")
    assert run(ml_client, "echo again") == ("Completed", "again\n")
    assert detached._server._process is not None and detached._server._process.poll() is None


WARM_PROBE = """
import json
from pydantic._internal._mock_val_ser import MockValSer
from smalt.execution.detached import PRELOAD
from importlib import import_module
for name in PRELOAD:
    import_module(name)
from smalt.entities import Entity
from smalt.services.supervisor import warm_up
warm_up()
cold, pending = [], list(Entity.__subclasses__())
while pending:
    cls = pending.pop()
    pending.extend(cls.__subclasses__())
    if isinstance(cls.__pydantic_validator__, MockValSer):
        cold.append(cls.__name__)
print(json.dumps(sorted(cold)))
"""


def test_the_fork_server_builds_every_entity_validator_before_it_forks() -> None:
    """Entities build their validators on first use; one that a supervisor or a driver builds
    itself costs every job (every pipeline: about 15 ms) again, in each forked process."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", WARM_PROBE], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == []
