"""Fixtures shared by every test: an isolated home and workspace, the CLI, and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

POSTGRES_ADMIN_URL = os.environ.get("SMALT_TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/postgres")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--transport", choices=("embedded", "http"), default="embedded",
                     help="how the `smalt` fixture's commands reach the workspace")  # fmt: skip


@pytest.fixture(scope="session", autouse=True)
def cli_agents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The CLI agents the installed `smalt` starts during the tests live in a folder of the
    session's own, and every one of them is stopped when the session ends."""
    from smalt.cli import agent

    folder = tmp_path_factory.mktemp("agents")
    saved = {name: os.environ.get(name) for name in (agent.DIR_ENV, agent.IDLE_ENV)}
    os.environ[agent.DIR_ENV] = str(folder)
    os.environ[agent.IDLE_ENV] = "300"  # a backstop: an agent missed below still exits by itself
    try:
        yield folder
    finally:
        agent.stop_all(folder)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own HOME and working directory, and no smalt settings from outside."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in (
        "SMALT_WORKSPACE",
        "SMALT_URL",
        "SMALT_TOKEN",
        "SMALT_DATABASE_URL",
        "SMALT_BLOBSTORE_URL",
        "SMALT_SECRET_KEY",
        "MLFLOW_TRACKING_URI",
        "MLFLOW_RUN_ID",
        "MLFLOW_EXPERIMENT_ID",
        "MLFLOW_TRACKING_TOKEN",
        "MLFLOW_EXPERIMENT_NAME",
        "MLFLOW_REGISTRY_URI",
        "XDG_CACHE_HOME",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(cwd)
    return cwd


@pytest.fixture
def workspace_path(tmp_path: Path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def ml_client(workspace_path: Path) -> Iterator[object]:
    from smalt import MLClient

    client = MLClient(workspace=workspace_path)
    yield client
    client.close()


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> object:
        import json

        return json.loads(self.stdout)


@pytest.fixture
def smalt(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, workspace_path: Path,  # type: ignore[no-untyped-def]
          request: pytest.FixtureRequest):
    """Run the CLI in-process through its real entry point (error boundary included).

    ``smalt("data", "list", "-o", "json")`` returns a CliResult; the workspace is the test's own
    unless ``--workspace``/``SMALT_WORKSPACE`` says otherwise. With ``pytest --transport http``
    every command goes through a ``smalt server`` on that workspace (``SMALT_URL``), except in tests
    marked ``embedded_only`` (what only a local workspace has: its folder, its creation).
    """
    from smalt.cli import run

    served: list[RunningServer] = []
    over_http = request.config.getoption("--transport") == "http" and "embedded_only" not in request.keywords

    def invoke(*args: str, workspace: bool = True) -> CliResult:
        if over_http and workspace and not os.environ.get("SMALT_URL"):
            # The same command through a server on the test's workspace: the CLI knows no other way.
            served.append(start_server(workspace_path, workspace_path.parent / "cli-server.log"))
            monkeypatch.setenv("SMALT_URL", served[-1].url)
        # Through a server, the workspace is the server's: --workspace would name one of its own.
        given = workspace and not os.environ.get("SMALT_URL")
        argv = ["smalt", *(["--workspace", str(workspace_path)] if given else []), *args]
        monkeypatch.setattr(sys, "argv", argv)
        capsys.readouterr()
        try:
            run()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    yield invoke
    for server in served:
        server.stop()


CLI_PROBE = """
import json, sys
args, watched = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
sys.argv = ["smalt", *args]
from smalt.cli import run
try:
    run()
    code = 0
except SystemExit as exc:
    code = exc.code or 0
sys.stdout.flush()
print("\\n@@" + json.dumps({"code": code, "loaded": sorted(set(sys.modules) & watched)}))
"""


def cli_probe(*args: str, watched: Iterable[str], env: dict[str, str] | None = None) -> tuple[str, str, dict[str, Any]]:
    """Run the CLI through its entry point in an interpreter of its own: what it printed on stdout
    and on stderr, and its exit code with which of the ``watched`` modules it loaded."""
    done = subprocess.run(
        [sys.executable, "-c", CLI_PROBE, json.dumps(list(args)), json.dumps(sorted(watched))],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out, _, report = done.stdout.rpartition("\n@@")
    return out, done.stderr, json.loads(report)


def _admin_engine():  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine

    return create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin URL of a reachable PostgreSQL, or a skip (a failure when CI is set)."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    try:
        engine = _admin_engine()
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except OperationalError as exc:
        message = f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {str(exc.orig).strip()}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set, so the PostgreSQL suite may not skip)")
        pytest.skip(message + " (set SMALT_TEST_POSTGRES_URL, or run it to include this suite)")
    return POSTGRES_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    name = f"smalt_test_{uuid.uuid4().hex[:12]}"
    engine = _admin_engine()
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


class RunningServer:
    """A `python -m smalt.server` process on loopback, serving one workspace."""

    def __init__(self, workspace: Path, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
        self.workspace, self.port, self.process, self.log = workspace, port, process, log
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(workspace: Path, log: Path, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = ()) -> RunningServer:  # fmt: skip
    port = free_port()
    handle = open(log, "wb")  # noqa: SIM115 - the server writes to it until it stops
    process = subprocess.Popen(
        [sys.executable, "-m", "smalt.server", "--workspace", str(workspace), "--port", str(port), *args],
        stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
    )  # fmt: skip
    handle.close()
    wait_until_listening(port, process, log)
    return RunningServer(workspace, port, process, log)


def wait_until_listening(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    """Until a server process accepts connections on ``port``; it is killed if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"smalt server exited: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)  # polling a starting process; there is nothing to wait on instead
    process.kill()
    raise RuntimeError(f"smalt server did not start: {log.read_text()}")


@pytest.fixture
def remote(workspace_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    """A server on the test's workspace, and SMALT_URL pointing the CLI at it."""
    server = start_server(workspace_path, tmp_path / "server.log")
    monkeypatch.setenv("SMALT_URL", server.url)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smalt_server(workspace_path: Path, tmp_path: Path) -> Iterator[RunningServer]:
    """`smalt server` for the test's workspace; MLflow clients reach it at `.url`."""
    server = start_server(workspace_path, tmp_path / "server.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[None]:
    """For tests that start online endpoints: afterwards every process they left (routers and
    instances, detached on purpose) is stopped, found by the test's folder in its command line
    or working directory."""
    yield
    import psutil

    root = str(tmp_path)
    mine = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
            ours = root in cmdline or (process.info["cwd"] or "").startswith(root)
            if ours and process.pid != os.getpid():
                mine.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    for process in mine:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(mine, timeout=5)
