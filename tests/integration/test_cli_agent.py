"""The CLI's agent (``smalt.cli.agent``): the installed ``smalt`` hands its command to a warm process
of the same installation, which runs it exactly as it would have run in-process: same output,
exit code, working folder, environment and workspace; Ctrl-C reaches it; it exits by itself; it
never serves another installation; and the tests leave none behind."""

from __future__ import annotations

import json
import marshal
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smalt.cli import agent

SMALT = str(Path(sys.executable).with_name("smalt"))
#: Runs the console script's entry in a process of its own and reports whether Typer was imported
#: there: it never is when the agent ran the command.
PROBE = """
import json, sys
sys.argv = ["smalt", *json.loads(sys.argv[1])]
from smalt.cli import console
try:
    console()
    code = 0
except SystemExit as exc:
    code = exc.code or 0
sys.stdout.flush()
print("\\n@@" + json.dumps({"code": code, "typer": "typer" in sys.modules}))
"""


@pytest.fixture
def agents(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder of agents of the test's own (short: a socket's path is), every agent in it stopped
    afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="smalt-agents-"))
    monkeypatch.setenv(agent.DIR_ENV, str(folder))
    monkeypatch.delenv(agent.AGENT_ENV, raising=False)
    yield folder
    for pid in agent.stop_all(folder):
        _wait_gone(pid)
    shutil.rmtree(folder, ignore_errors=True)


def _wait_gone(pid: int, timeout_s: float = 15) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)  # another process's end: there is nothing of ours to wait on
    return False


def _agent_pid(folder: Path, timeout_s: float = 30) -> int:
    """The pid of the agent serving ``folder``, once it accepts commands."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for pid_file in folder.glob("*.sock.pid"):
            sock = Path(str(pid_file).removesuffix(".pid"))
            if sock.exists():
                return int(pid_file.read_text())
        time.sleep(0.05)  # the agent is importing smalt in its own process
    raise AssertionError(f"no agent started in {folder}")


def probe(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> tuple[str, str, dict[str, object]]:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env={**os.environ, **(env or {})}, check=False)  # fmt: skip
    out, _, report = done.stdout.rpartition("\n@@")
    return out, done.stderr, json.loads(report)


def test_a_command_runs_in_the_agent_with_the_same_answer(agents: Path, workspace_path: Path, tmp_path: Path) -> None:
    (tmp_path / "cwd" / "iris.csv").write_text("a,b\n1,2\n")
    ws = ("--workspace", str(workspace_path))
    first = probe("data", "create", "--name", "iris", "--path", "iris.csv", "--type", "uri_file", *ws, "-o", "json",
                  cwd=tmp_path / "cwd")  # fmt: skip
    assert first[2] == {"code": 0, "typer": True}, first[1]  # no agent yet: in-process; one starts meanwhile
    _agent_pid(agents)

    # The relative path is the launcher's, and so is the workspace; the answer is the same JSON.
    again = probe("data", "create", "--name", "iris", "--path", "iris.csv", "--type", "uri_file", *ws, "-o", "json",
                  cwd=tmp_path / "cwd")  # fmt: skip
    assert again[2] == {"code": 0, "typer": False}, again[1]
    made, remade = json.loads(first[0]), json.loads(again[0])
    assert (made["version"], remade["version"]) == ("1", "2")
    assert remade["path"] == made["path"]  # the same file, from the launcher's folder: the same upload

    missing = probe("data", "show", "--name", "nope", *ws)
    assert missing[2] == {"code": 1, "typer": False}
    assert missing[1].startswith("Error: ") and "nope" in missing[1]
    usage = probe("data", "show", "--no-such-option")
    assert usage[2] == {"code": 2, "typer": False} and "No such option" in usage[1]


def test_each_command_gets_its_own_environment(agents: Path, tmp_path: Path) -> None:
    probe("data", "list")  # starts the agent
    _agent_pid(agents)
    for name in ("one", "two"):
        (tmp_path / f"{name}.txt").write_text(name)
        env = {"SMALT_WORKSPACE": str(tmp_path / f"ws-{name}")}
        made = probe("data", "create", "--name", name, "--path", str(tmp_path / f"{name}.txt"), "--type", "uri_file",
                     env=env)  # fmt: skip
        assert made[2] == {"code": 0, "typer": False}, made[1]
    for name in ("one", "two"):
        env = {"SMALT_WORKSPACE": str(tmp_path / f"ws-{name}")}
        listed = probe("data", "list", "--query", "[].name", "-o", "tsv", env=env)
        assert listed[0] == f"{name}\n"


def test_ctrl_c_reaches_the_command_and_a_kill_ends_the_launcher_alike(
    agents: Path, workspace_path: Path, tmp_path: Path
) -> None:
    subprocess.run([SMALT, "data", "list"], check=True, capture_output=True, timeout=120)
    _agent_pid(agents)
    job = tmp_path / "sleep.yml"
    job.write_text("command: sleep 30\n")
    env = {**os.environ, "SMALT_WORKSPACE": str(workspace_path)}
    follow = subprocess.Popen([SMALT, "job", "create", "-f", str(job), "--stream"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    _wait_for_running_job(workspace_path)
    follow.send_signal(signal.SIGINT)
    out, err = follow.communicate(timeout=60)
    assert follow.returncode == 130, err  # as in-process: the stream stops, the job runs on

    # A command killed outright: its launcher ends as if killed itself.
    follow = subprocess.Popen([SMALT, "job", "stream", "-n", _running_job(workspace_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env)  # fmt: skip
    time.sleep(1.0)  # it is streaming (the job runs for 30 s): there is no event to wait on from outside
    children = [p for p in _children_of(_agent_pid(agents))]
    assert children, "the stream should run in a child of the agent"
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    follow.communicate(timeout=60)
    assert follow.returncode == -signal.SIGKILL
    subprocess.run([SMALT, "job", "cancel", "-n", _running_job(workspace_path)], env=env, capture_output=True,
                   check=True, timeout=60)  # fmt: skip


def _running_job(workspace: Path) -> str:
    listed = subprocess.run([SMALT, "job", "list", "--status", "Running", "--query", "[].name", "-o", "tsv"],
                            capture_output=True, text=True, env={**os.environ, "SMALT_WORKSPACE": str(workspace)},
                            check=True, timeout=60)  # fmt: skip
    return listed.stdout.split()[0] if listed.stdout.split() else ""


def _wait_for_running_job(workspace: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _running_job(workspace):
            return
        time.sleep(0.2)  # the job starts in another process
    raise AssertionError("the job never ran")


def _children_of(pid: int) -> list[int]:
    import psutil

    return [child.pid for child in psutil.Process(pid).children()]


def test_an_agent_of_another_installation_is_never_used(agents: Path, tmp_path: Path) -> None:
    probe("data", "list")
    pid = _agent_pid(agents)
    sock = next(agents.glob("*.sock"))
    # A launcher whose key differs (another smalt, or this one after any change) is refused...
    with socket.socket(socket.AF_UNIX) as connection:
        connection.connect(str(sock))
        request = marshal.dumps({"key": "another", "argv": ["data", "list"], "cwd": str(tmp_path), "env": {},
                                 "umask": 0o22})  # fmt: skip
        socket.send_fds(connection, [len(request).to_bytes(4, "big") + request], [0, 1, 2])
        assert connection.makefile("rb").readline().startswith(b"refused")
    # ...and names another socket in the first place: the key covers every source file's size and time.
    package = tmp_path / "pkg" / "smalt"
    shutil.copytree(Path(agent.__file__).resolve().parents[1], package, ignore=shutil.ignore_patterns("__pycache__"))
    before = agent.install_key(package)
    assert agent.install_key(package) == before
    os.utime(package / "errors.py", ns=(0, 1))
    assert agent.install_key(package) != before
    os.kill(pid, 0)  # the agent still serves its own installation


def test_an_idle_agent_exits_by_itself_and_removes_its_socket(agents: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(agent.IDLE_ENV, "4")
    probe("data", "list")
    pid = _agent_pid(agents)
    assert _wait_gone(pid, timeout_s=30)
    assert list(agents.iterdir()) == []  # its socket, pid file and lock file gone with it


def test_a_job_left_running_does_not_hold_the_agents_lock(agents: Path, workspace_path: Path, tmp_path: Path) -> None:
    env = {"SMALT_WORKSPACE": str(workspace_path)}
    probe("data", "list", env=env)
    first = _agent_pid(agents)
    job = tmp_path / "sleep.yml"
    job.write_text(textwrap.dedent("command: sleep 20\n"))
    assert probe("job", "create", "-f", str(job), env=env)[2] == {"code": 0, "typer": False}
    agent.stop_all(agents)
    assert _wait_gone(first)
    running = _running_job(workspace_path)
    assert running  # its supervisor, forked from the command, runs on
    probe("data", "list", env=env)
    assert _agent_pid(agents) != first  # a new agent could start: the job held no lock of the old one
    assert probe("job", "cancel", "-n", running, env=env)[2]["code"] == 0


def test_turned_off_every_command_runs_in_process(agents: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(agent.AGENT_ENV, "0")
    for _ in range(2):
        assert probe("data", "list")[2] == {"code": 0, "typer": True}
    assert list(agents.iterdir()) == []


def test_where_no_socket_fits_every_command_runs_in_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    monkeypatch.setenv(agent.DIR_ENV, str(deep))
    monkeypatch.delenv(agent.AGENT_ENV, raising=False)
    for _ in range(2):
        assert probe("data", "list")[2] == {"code": 0, "typer": True}
    assert list(deep.iterdir()) == []  # and no agent was started to fail there


def test_a_job_a_command_started_does_not_hold_up_the_next_command(agents: Path, workspace_path: Path,
                                                                    tmp_path: Path) -> None:  # fmt: skip
    env = {"SMALT_WORKSPACE": str(workspace_path)}
    probe("data", "list", env=env)
    _agent_pid(agents)
    job = tmp_path / "sleep.yml"
    job.write_text("command: sleep 30\n")
    assert probe("job", "create", "-f", str(job), "--name", "long_one", env=env)[2] == {"code": 0, "typer": False}
    # Its supervisor was forked from that command's process: the agent answers the next at once.
    shown = probe("job", "show", "-n", "long_one", "--query", "status", "-o", "tsv", env=env)
    assert shown[2] == {"code": 0, "typer": False}
    assert shown[0].strip() in ("NotStarted", "Queued", "Preparing", "Running")  # not 30 s later
    assert probe("job", "cancel", "-n", "long_one", env=env)[2]["code"] == 0
