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
