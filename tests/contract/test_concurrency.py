"""Many OS processes using one workspace at the same moment, on SQLite and on PostgreSQL.

Each child imports smalt and gets ready, then waits for a start file; the test creates it only once
every child is ready, so all of them are running before any of them finishes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from smalt import MLClient
from smalt.entities import Data
from smalt.services import open_workspace
from smalt.store.migrate import HEAD

PROCESSES = 20
READY_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 60.0

# Every child script runs this where it says WAIT_FOR_START: report ready, then poll the start file.
_WAIT_FOR_START = """
import time
from pathlib import Path
signals = Path(sys.argv[1])
(signals / f"ready-{sys.argv[2]}").touch()
deadline = time.monotonic() + 60
while not (signals / "go").exists():
    if time.monotonic() > deadline:
        sys.exit("no start signal")
    time.sleep(0.002)
"""

REGISTER = """
import json, sys
from smalt import MLClient
from smalt.entities import Data
index, workspace, path = int(sys.argv[2]), sys.argv[3], sys.argv[4]
client = MLClient(workspace=workspace)
data = Data(name="shared", type="uri_file", path=path, description=f"process {index}")
WAIT_FOR_START
created = client.data.create_or_update(data)
print(json.dumps({"index": index, "version": created.version, "path": created.path}))
client.close()
""".replace("WAIT_FOR_START\n", _WAIT_FOR_START)

OPEN_NEW = """
import json, sys
from smalt import MLClient
WAIT_FOR_START
client = MLClient(workspace=sys.argv[3])
print(json.dumps({"id": client.workspace.id, "datastores": [d.name for d in client.datastores.list()]}))
client.close()
""".replace("WAIT_FOR_START\n", _WAIT_FOR_START)


@dataclass
class Finished:
    index: int
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, object]:
        value = json.loads(self.stdout)
        assert isinstance(value, dict)
        return value


def run_together(script: str, signals: Path, args: list[list[str]]) -> list[Finished]:
    """Start one process per argument list, release them at once, and collect what each did."""
    signals.mkdir()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(signals), str(index), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index, extra in enumerate(args)
    ]
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while len(list(signals.glob("ready-*"))) < len(processes):
            early = [i for i, p in enumerate(processes) if p.poll() is not None]
            if early:
                _, err = processes[early[0]].communicate()
                pytest.fail(f"process {early[0]} ended before the start signal:\n{err}")
            if time.monotonic() > deadline:
                pytest.fail("the processes did not all get ready in time")
            time.sleep(0.01)
        (signals / "go").touch()
        finished = []
        for index, process in enumerate(processes):
            out, err = process.communicate(timeout=RUN_TIMEOUT_S)
            finished.append(Finished(index, process.returncode, out, err))
        return finished
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def _failures(finished: list[Finished]) -> str:
    """Each failed process's last line, then the whole stderr of the first one."""
    failed = [f for f in finished if f.returncode]
    if not failed:
        return ""
    lines = [f"{len(failed)} of {len(finished)} processes failed:"]
    lines += [f"  process {f.index}: {(f.stderr.strip().splitlines() or ['?'])[-1][:300]}" for f in failed]
    return "\n".join([*lines, f"first failure, in full:\n{failed[0].stderr[-4000:]}"])


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which database the workspace keeps its metadata in; the children inherit the setting."""
    if request.param == "postgres":
        monkeypatch.setenv("SMALT_DATABASE_URL", request.getfixturevalue("postgres_url"))
    return str(request.param)


@pytest.mark.slow
def test_twenty_processes_register_versions_of_one_name_at_once(
    database: str, workspace_path: Path, tmp_path: Path
) -> None:
    with MLClient(workspace=workspace_path):
        pass  # the workspace exists; this test is about the registrations, not the set-up
    files = tmp_path / "files"
    files.mkdir()
    for index in range(PROCESSES):
        (files / f"part{index}.csv").write_text(f"x,y\n{index},{index * index}\n")

    finished = run_together(
        REGISTER,
        tmp_path / "signals",
        [[str(workspace_path), str(files / f"part{index}.csv")] for index in range(PROCESSES)],
    )

    failures = _failures(finished)
    assert not failures, failures
    by_version = {str(f.json()["version"]): f.json() for f in finished}
    assert sorted(by_version, key=int) == [str(v) for v in range(1, PROCESSES + 1)]
    with MLClient(workspace=workspace_path) as client:
        assert [d.version for d in client.data.list("shared")] == [str(v) for v in range(PROCESSES, 0, -1)]
        for version, result in by_version.items():
            stored = client.data.get("shared", version=version)
            assert stored.description == f"process {result['index']}"
            assert stored.path == result["path"]
            downloaded = client.data.download("shared", version=version, download_path=tmp_path / "down" / version)
            expected = (files / f"part{result['index']}.csv").read_text()
            assert downloaded.read_text() == expected
        # The next registration continues after the race, from whichever process got the last number.
        after = Data(name="shared", type="uri_file", path=str(files / "part0.csv"), description="after")
        assert client.data.create_or_update(after).version == str(PROCESSES + 1)


@pytest.mark.slow
def test_twenty_processes_open_a_new_workspace_at_once(database: str, tmp_path: Path) -> None:
    workspace = tmp_path / "brand-new"

    finished = run_together(OPEN_NEW, tmp_path / "signals", [[str(workspace)] for _ in range(PROCESSES)])

    failures = _failures(finished)
    assert not failures, failures
    results = [f.json() for f in finished]
    assert {str(r["id"]) for r in results} == {json.loads((workspace / "workspace.json").read_text())["id"]}
    assert all(r["datastores"] == ["workspaceblobstore"] for r in results)
    context = open_workspace(workspace)
    try:
        with context.store.engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]
            datastores = connection.execute(text("SELECT name FROM datastores")).scalars().all()
        assert datastores == ["workspaceblobstore"]
    finally:
        context.close()
