"""The CLI's agent: what makes a ``smalt`` command as fast on the embedded default as through a
server.

A fresh interpreter spends about half a second importing smalt (Typer, pydantic, SQLAlchemy, the
services) before a command can start. So the installed ``smalt`` is a launcher that imports only
the standard library and hands its command line to an agent: a process of the same user that has
imported everything once, and forks one child per command. The child takes the launcher's
standard streams (passed over a Unix socket, so a terminal stays a terminal), environment, working
directory and umask, runs the command exactly as ``smalt.cli.run`` would in-process, and sends back
its exit code. Signals the launcher gets (Ctrl-C) are passed on to that child.

- **Started on demand.** When no agent answers, the launcher starts one in the background and runs
  this command in-process itself, as before; the next command finds the agent warm.
- **Exits by itself** after ``SMALT_AGENT_IDLE_S`` seconds (default 900) with no command, and when
  its socket is taken from it.
- **Never serves another version.** Its socket's name carries a key made of the interpreter, the
  installed smalt and every one of its source files' size and modification time; a launcher of
  any other installation, or after any change to smalt's files, names another socket. The agent
  also checks the key each launcher sends.
- **Only its user's.** The socket lives in a folder only that user may enter, and the agent
  serves only connections from its own user id.

``SMALT_AGENT=0`` runs every command in-process; ``SMALT_AGENT_DIR`` puts the sockets elsewhere
(the tests use their own folder, and stop every agent in it when they end).

This module imports only the standard library at its top: the launcher runs it before anything else.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import signal
import socket
import stat
import struct
import sys
from pathlib import Path
from typing import Any

AGENT_ENV, DIR_ENV, IDLE_ENV = "SMALT_AGENT", "SMALT_AGENT_DIR", "SMALT_AGENT_IDLE_S"
DEFAULT_IDLE_S = 900.0
#: What the agent imports before it serves: everything a command would otherwise import itself.
PRELOAD = (
    "smalt.cli.main", "smalt.cli.assets", "smalt.cli.job", "smalt.cli.endpoint", "smalt.cli.lineage",
    "smalt.cli.resources", "smalt.cli.package", "smalt.cli.output", "smalt.cli.server",
    "smalt.client", "smalt.client.ml_client", "smalt.client.operations", "smalt.client.transport",
    "smalt.client.dsl", "smalt.services", "smalt.services.jobs", "smalt.services.pipelines",
    "smalt.services.supervisor", "smalt.services.endpoints", "smalt.services.lineage",
    "smalt.services.packaging", "smalt.specs", "smalt.store", "smalt.environments",
    "sqlalchemy.dialects.sqlite", "rich.console", "rich.table", "rich.tree", "jmespath",
)  # fmt: skip
_HEADER = struct.Struct("!I")
#: The longest path a Unix socket may have on Linux (107 bytes), less a margin.
_MAX_SOCKET_PATH = 100
_MAX_REQUEST = 4 << 20


# -- the launcher's side ----------------------------------------------------------------------
def forward(argv: list[str]) -> int | None:
    """Run ``argv`` in the agent: its exit code, or None when this command should run in-process
    (agents turned off, or none answering: one is then started for the next command)."""
    if os.environ.get(AGENT_ENV, "1") == "0" or not hasattr(socket, "send_fds") or argv == ["--version"]:
        return None
    folder = socket_folder()
    if folder is None:
        return None
    key = install_key()
    path = folder / f"{key}.sock"
    if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
        return None  # no agent could listen there (a Unix socket's path is short): none is started
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(str(path))
    except OSError:
        connection.close()
        _start_agent(path, key)
        return None
    with connection:
        return _run_remotely(connection, argv, key)


def _run_remotely(connection: socket.socket, argv: list[str], key: str) -> int | None:
    umask = os.umask(0)
    os.umask(umask)
    request = json.dumps({"key": key, "argv": argv, "cwd": os.getcwd(), "env": dict(os.environ),
                          "umask": umask}).encode()  # fmt: skip
    try:
        socket.send_fds(connection, [_HEADER.pack(len(request)) + request], [0, 1, 2])
        answers = connection.makefile("rb")
        first = answers.readline()
    except OSError:
        return None  # an agent that went away as we came: this command runs in-process
    if not first.startswith(b"pid "):
        return None  # refused (another key): in-process
    # From here the command runs there: the launcher only passes on signals and waits for its code.
    child = int(first.split()[1])

    def pass_on(signum: int, _: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for passed in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(passed, pass_on)
    end = answers.readline().split()  # a signal passed on meanwhile does not interrupt it (PEP 475)
    if len(end) == 2 and end[0] == b"exit":
        return int(end[1])
    if len(end) == 2 and end[0] == b"signal":  # killed: this process ends the same way
        killed = int(end[1])
        sys.stdout.flush()
        with contextlib.suppress(OSError, ValueError):  # SIGKILL has no handler to reset
            signal.signal(killed, signal.SIG_DFL)
        os.kill(os.getpid(), killed)
        return 128 + killed
    sys.stderr.write("Error: the smalt agent went away before the command ended.\n")
    return 1


def socket_folder() -> Path | None:
    """The folder of this user's agent sockets, made owner-only; None if it cannot be trusted."""
    given = os.environ.get(DIR_ENV)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(given) if given else Path(runtime) / "smalt" if runtime else Path(f"/tmp/smalt-agents-{os.getuid()}")
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        found = folder.lstat()
    except OSError:
        return None
    # Someone else's folder, or one others may enter, is not where this user's commands go.
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid() or found.st_mode & 0o077:
        return None
    return folder


def install_key(package: Path | None = None) -> str:
    """What identifies this installation exactly: the interpreter, smalt's folder, and the size
    and modification time of each of its source files (any edit, upgrade or reinstall changes it)."""
    package = package or Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(f"{sys.executable}\0{package}\0".encode())
    stack = [str(package)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        stack.append(entry.path)
                elif entry.name.endswith((".py", ".json", ".yml", ".yaml", ".txt")):
                    info = entry.stat()
                    digest.update(f"{entry.path}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:16]


def _start_agent(path: Path, key: str) -> None:
    import subprocess

    with contextlib.suppress(OSError):
        subprocess.Popen(
            [sys.executable, "-m", "smalt.cli.agent", str(path), key],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True,
        )  # fmt: skip


# -- the agent's side -------------------------------------------------------------------------
class _Agent:
    """The serving loop: one forked child per command; each child's end (its exit code, or the
    signal that killed it) is told to its launcher, which ends the same way."""

    def __init__(self, listener: socket.socket, key: str, own_fds: list[int]) -> None:
        import selectors

        self.listener, self.key = listener, key
        self.running: dict[int, socket.socket] = {}  # child pid -> its launcher's connection
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, "accept")
        # A child's end wakes the loop: SIGCHLD writes to this pipe (signal.set_wakeup_fd).
        self.wake_read, self.wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.selector.register(self.wake_read, selectors.EVENT_READ, "reap")
        # Closed in every child: a job's supervisor forked from a command must hold neither the
        # lock (no agent could start while it runs) nor another command's connection.
        self.own_fds = [*own_fds, listener.fileno(), self.wake_read, self.wake_write]
        with contextlib.suppress(AttributeError):
            self.own_fds.append(self.selector.fileno())

    def serve(self, idle_s: float, still_mine: Any) -> None:
        while True:
            events = self.selector.select(timeout=None if self.running else idle_s)
            if not events and not self.running:
                return  # idle: nothing to serve, no command to report on
            for selected, _ in events:
                if selected.data == "accept":
                    connection, _ = self.listener.accept()
                    self._start(connection)
                else:
                    with contextlib.suppress(OSError):
                        os.read(self.wake_read, 512)
                    self._reap()
            if not still_mine() and not self.running:
                return  # the socket was removed or taken: no launcher can reach this agent

    def _start(self, connection: socket.socket) -> None:
        fds: list[int] = []
        try:
            uid = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
            request = _read_request(connection, fds) if uid == os.getuid() else None
            if request is None:
                connection.close()
                return
            if request.get("key") != self.key:
                connection.sendall(b"refused: another installation\n")
                connection.close()
                return
            pid = os.fork()
            if pid == 0:
                _child(connection, fds, request, [*self.own_fds, *(c.fileno() for c in self.running.values())])
            self.running[pid] = connection
        except (OSError, ValueError):
            connection.close()
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _reap(self) -> None:
        while self.running:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            connection = self.running.pop(pid, None)
            if connection is None:
                continue
            if os.WIFSIGNALED(status):
                end = f"signal {os.WTERMSIG(status)}\n"
            else:
                end = f"exit {os.waitstatus_to_exitcode(status)}\n"
            with contextlib.suppress(OSError):
                connection.sendall(end.encode())
            connection.close()


def serve(path: Path, key: str, idle_s: float) -> None:
    """Preload, then serve commands at ``path`` until idle for ``idle_s`` seconds."""
    import fcntl
    import importlib

    lock = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another agent for this key is starting or serving
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        listener.bind(str(path))
    finally:
        os.umask(old)
    listener.listen(64)
    inode = path.stat().st_ino

    def still_mine() -> bool:
        try:
            return path.stat().st_ino == inode
        except OSError:
            return False

    pid_file = Path(f"{path}.pid")
    pid_file.write_text(f"{os.getpid()}\n")
    signal.signal(signal.SIGTERM, _stop)
    try:
        _Agent(listener, key, [lock]).serve(idle_s, still_mine)
    finally:
        if still_mine():
            with contextlib.suppress(OSError):
                path.unlink()
        with contextlib.suppress(OSError):
            pid_file.unlink()


def _stop(signum: int, _: Any) -> None:
    raise SystemExit(0)


def _read_request(connection: socket.socket, fds: list[int]) -> dict[str, Any] | None:
    """The launcher's request, its three standard streams put in ``fds``; None if malformed."""
    connection.settimeout(10)
    data, received, _, _ = socket.recv_fds(connection, 1 << 16, 3)
    fds.extend(received)
    if len(data) < _HEADER.size or len(fds) != 3:
        return None
    (size,) = _HEADER.unpack_from(data)
    if size > _MAX_REQUEST:
        return None
    data = data[_HEADER.size :]
    while len(data) < size:
        more = connection.recv(size - len(data))
        if not more:
            return None
        data += more
    connection.settimeout(None)
    request = json.loads(data)
    return request if isinstance(request, dict) else None


def _child(connection: socket.socket, fds: list[int], request: dict[str, Any], inherited: list[int]) -> None:
    """Become the command: the launcher's streams, environment, folder and umask; then run it."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for fd in inherited:
            with contextlib.suppress(OSError):
                os.close(fd)
        for signum in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # The pid first (the launcher passes signals on to it); the agent tells how it ended.
        connection.sendall(f"pid {os.getpid()}\n".encode())
        connection.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        fds.clear()
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        os.umask(int(request["umask"]))
        _reopen_streams()
        sys.argv = ["smalt", *request["argv"]]
        from smalt.cli import run

        try:
            run()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, int | None):
                sys.stderr.write(f"{exc.code}\n")
    except BaseException as exc:  # noqa: BLE001 - whatever happened, the command ends with a code
        with contextlib.suppress(Exception):
            sys.stderr.write(f"Internal error: {type(exc).__name__}: {exc}\n")
        code = 2
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _reopen_streams() -> None:
    """Standard streams on the launcher's descriptors, buffered as Python buffers its own."""
    encoding = os.environ.get("PYTHONIOENCODING") or "utf-8"
    sys.stdin = open(0, encoding=encoding, closefd=False)  # noqa: SIM115 - the process's own streams
    sys.stdout = open(1, "w", encoding=encoding, closefd=False, buffering=1 if os.isatty(1) else -1)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding=encoding, errors="backslashreplace", closefd=False, buffering=1)  # noqa: SIM115


def stop_all(folder: Path) -> list[int]:
    """Stop every agent whose socket is in ``folder`` (the tests' teardown): the pids signalled."""
    stopped = []
    for pid_file in folder.glob("*.sock.pid"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
            stopped.append(pid)
    return stopped


def main(argv: list[str]) -> int:
    path, key = Path(argv[0]), argv[1]
    try:
        idle_s = float(os.environ.get(IDLE_ENV) or DEFAULT_IDLE_S)
    except ValueError:
        idle_s = DEFAULT_IDLE_S
    try:
        serve(path, key, max(idle_s, 0.1))
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.ENAMETOOLONG):
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
