"""The CLI's agent: what makes a ``smalt`` command as fast on the embedded default as through a
server.

A fresh interpreter spends about half a second importing smalt (Typer, pydantic, SQLAlchemy, the
services) before a command can start. So the installed ``smalt`` is a launcher
(``smalt.cli.launcher``, built-in modules only) that hands its command line to an agent: a
process of the same user that has imported everything once, and forks one child per command.
The child takes the launcher's standard streams (passed over a Unix socket, so a terminal stays a
terminal), environment, working directory and umask, and runs the command exactly as
``smalt.cli.run`` would in-process; the agent tells the launcher how it ended. Signals the
launcher gets (Ctrl-C) are passed on to that child.

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

"""

from __future__ import annotations

import contextlib
import errno
import marshal
import os
import signal
import socket
import struct
import sys
from pathlib import Path
from typing import Any

from smalt.cli.launcher import AGENT_ENV, DEFAULT_IDLE_S, DIR_ENV, HEADER, IDLE_ENV, MAX_REQUEST, install_key

__all__ = ["AGENT_ENV", "DIR_ENV", "IDLE_ENV", "install_key", "main", "serve", "stop_all"]

#: What the agent imports before it serves: everything a command would otherwise import itself.
PRELOAD = (
    "smalt.cli.main", "smalt.cli.assets", "smalt.cli.job", "smalt.cli.endpoint", "smalt.cli.lineage",
    "smalt.cli.resources", "smalt.cli.package", "smalt.cli.output", "smalt.cli.server", "smalt.cli.access",
    "smalt.client", "smalt.client.ml_client", "smalt.client.operations", "smalt.client.transport",
    "smalt.client.dsl", "smalt.services", "smalt.services.jobs", "smalt.services.pipelines",
    "smalt.services.supervisor", "smalt.services.endpoints", "smalt.services.lineage",
    "smalt.services.packaging", "smalt.services.workspaces", "smalt.specs", "smalt.store",
    "smalt.environments", "sqlalchemy.dialects.sqlite", "rich.console", "rich.table", "rich.tree",
    "jmespath", "warnings",
)  # fmt: skip
#: How many workspaces the agent keeps open and warm at most (the ones used last).
KEPT = 8


class _Agent:
    """The serving loop: one forked child per command; each child's end (its exit code, or the
    signal that killed it) is told to its launcher, which ends the same way."""

    def __init__(self, listener: socket.socket, key: str, own_fds: list[int]) -> None:
        import selectors

        self.listener, self.key = listener, key
        # child pid -> its launcher's connection, and the pipe it names the workspaces it opened on
        self.running: dict[int, tuple[socket.socket, int]] = {}
        self.warm: list[Path] = []  # the workspaces kept open for the children, the latest last
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
            told, tell = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(told)
                inherited = [*self.own_fds, *(fd for c, t in self.running.values() for fd in (c.fileno(), t))]
                _child(connection, fds, request, inherited, tell)
            os.close(tell)
            self.running[pid] = connection, told
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
            if pid not in self.running:
                continue
            connection, told = self.running.pop(pid)
            if os.WIFSIGNALED(status):
                end = f"signal {os.WTERMSIG(status)}\n"
            else:
                end = f"exit {os.waitstatus_to_exitcode(status)}\n"
            with contextlib.suppress(OSError):
                connection.sendall(end.encode())
            connection.close()
            self._keep_warm([Path(line.decode()) for line in _written(told).splitlines() if line])

    def _keep_warm(self, workspaces: list[Path]) -> None:
        """Open the workspaces a command used, their statements compiled, for the next commands
        (``services.workspace.kept``); the least recently used beyond KEPT are closed."""
        from smalt.services import supervisor
        from smalt.services.workspace import forget

        for path in workspaces:
            if path in self.warm:
                self.warm.remove(path)
                self.warm.append(path)
                continue
            try:
                supervisor.warm_workspace(path)
            except Exception:  # noqa: BLE001 - a workspace that cannot be opened is simply not kept
                continue
            self.warm.append(path)
            while len(self.warm) > KEPT:
                forget(self.warm.pop(0))


def _written(fd: int) -> bytes:
    """What a finished child wrote to its pipe ``fd`` (then closed), never waiting: a job's
    supervisor it forked may hold the pipe's other end open long after."""
    os.set_blocking(fd, False)
    data = b""
    try:
        while len(data) < (1 << 16) and (block := os.read(fd, 1 << 16)):
            data += block
    except BlockingIOError:
        pass
    finally:
        os.close(fd)
    return data


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
    from smalt.cli.main import warm_up
    from smalt.services import supervisor

    warm_up()
    supervisor.warm_up()  # every entity's validator built once, for every command
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
        mine = still_mine()
        if mine:
            with contextlib.suppress(OSError):
                path.unlink()
        with contextlib.suppress(OSError):
            pid_file.unlink()
        if mine:  # nothing of it is left in the folder (the lock is still held: no agent is between)
            with contextlib.suppress(OSError):
                Path(f"{path}.lock").unlink()


def _stop(signum: int, _: Any) -> None:
    raise SystemExit(0)


def _read_request(connection: socket.socket, fds: list[int]) -> dict[str, Any] | None:
    """The launcher's request, its three standard streams put in ``fds``; None if malformed."""
    connection.settimeout(10)
    data, received, _, _ = socket.recv_fds(connection, 1 << 16, 3)
    fds.extend(received)
    if len(data) < HEADER.size or len(fds) != 3:
        return None
    (size,) = HEADER.unpack_from(data)
    if size > MAX_REQUEST:
        return None
    data = data[HEADER.size :]
    while len(data) < size:
        more = connection.recv(size - len(data))
        if not more:
            return None
        data += more
    connection.settimeout(None)
    request = marshal.loads(data)  # from a process of this user (SO_PEERCRED), this installation's launcher
    return request if isinstance(request, dict) else None


def _child(connection: socket.socket, fds: list[int], request: dict[str, Any], inherited: list[int], tell: int) -> None:
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
        from smalt.services.workspace import opened

        opened.clear()  # what the agent opened itself is warm already: report only this command's

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
        with contextlib.suppress(Exception):  # which workspaces to keep warm for the next commands
            os.write(tell, "".join(f"{path}\n" for path in sorted(opened)).encode()[: 1 << 16])
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
