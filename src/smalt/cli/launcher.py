"""The installed ``smalt`` command's first step: hand the command to the CLI's agent
(``smalt.cli.agent``, which says how and why), or say that it runs here.

It runs before anything else of smalt, on every command, so it imports only modules the
interpreter has built in or loaded already.
"""

from __future__ import annotations

# The launcher's imports are C modules the interpreter has or loads at once: `socket`, `signal`,
# `json`, `pathlib` and `typing` would cost every command tens of ms here (their enums, their re).
import _signal  # type: ignore[import-not-found]  # `signal` itself would import enum
import _socket
import marshal
import os
import stat
import struct
import sys
import zlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

AGENT_ENV, DIR_ENV, IDLE_ENV = "SMALT_AGENT", "SMALT_AGENT_DIR", "SMALT_AGENT_IDLE_S"
DEFAULT_IDLE_S = 900.0
#: A request's length, before it (the agent reads the one, then the other).
HEADER = struct.Struct("!I")
MAX_REQUEST = 4 << 20
#: The longest path a Unix socket may have on Linux (107 bytes), less a margin.
_MAX_SOCKET_PATH = 100
_PASSED_ON = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT)


def forward(argv: list[str]) -> int | None:
    """Run ``argv`` in the agent: its exit code, or None when this command should run in-process
    (agents turned off, or none answering: one is then started for the next command)."""
    if os.environ.get(AGENT_ENV, "1") == "0" or not hasattr(_socket, "SCM_RIGHTS") or argv == ["--version"]:
        return None
    folder = socket_folder()
    if folder is None:
        return None
    key = install_key()
    path = os.path.join(folder, f"{key}.sock")
    if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
        return None  # no agent could listen there (a Unix socket's path is short): none is started
    connection = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        try:
            connection.connect(path)
        except OSError:
            _start_agent(path, key)
            return None
        return _run_remotely(connection, argv, key)
    finally:
        connection.close()


def _run_remotely(connection: Any, argv: list[str], key: str) -> int | None:
    umask = os.umask(0)
    os.umask(umask)
    request = marshal.dumps({"key": key, "argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "umask": umask})
    message = HEADER.pack(len(request)) + request
    lines = _Lines(connection)
    try:
        sent = connection.sendmsg([message], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("3i", 0, 1, 2))])
        if sent < len(message):
            connection.sendall(message[sent:])
        first = lines.next()
    except OSError:
        return None  # an agent that went away as we came: this command runs in-process
    if not first.startswith(b"pid "):
        return None  # refused (another key): in-process
    # From here the command runs there: the launcher only passes on signals and waits for its code.
    child = int(first.split()[1])

    def pass_on(signum: int, _: Any) -> None:
        try:  # noqa: SIM105 - contextlib is one more import on every command
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for passed in _PASSED_ON:
        _signal.signal(passed, pass_on)
    end = lines.next().split()  # a signal passed on meanwhile does not interrupt it (PEP 475)
    if len(end) == 2 and end[0] == b"exit":
        return int(end[1])
    if len(end) == 2 and end[0] == b"signal":  # killed: this process ends the same way
        killed = int(end[1])
        sys.stdout.flush()
        try:  # noqa: SIM105 - as above
            _signal.signal(killed, _signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL has no handler to reset
            pass
        os.kill(os.getpid(), killed)
        return 128 + killed
    sys.stderr.write("Error: the smalt agent went away before the command ended.\n")
    return 1


class _Lines:
    """The lines an agent answers, read as they come (a buffered file would need `socket`)."""

    def __init__(self, connection: Any) -> None:
        self._connection, self._buffer = connection, b""

    def next(self) -> bytes:
        while b"\n" not in self._buffer:
            more = self._connection.recv(4096)
            if not more:
                line, self._buffer = self._buffer, b""
                return line
            self._buffer += more
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line


def socket_folder() -> str | None:
    """The folder of this user's agent sockets, made owner-only; None if it cannot be trusted."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    default = os.path.join(runtime, "smalt") if runtime else f"/tmp/smalt-agents-{os.getuid()}"
    folder = os.environ.get(DIR_ENV) or default
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        found = os.lstat(folder)
    except OSError:
        return None
    # Someone else's folder, or one others may enter, is not where this user's commands go.
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid() or found.st_mode & 0o077:
        return None
    return folder


def install_key(package: str | os.PathLike[str] | None = None) -> str:
    """What identifies this installation exactly: the interpreter, smalt's folder, and the size
    and modification time of each of its source files (any edit, upgrade or reinstall changes it).
    Two checksums, not a cryptographic digest: whoever could forge a match could edit smalt itself."""
    top = os.fspath(package) if package is not None else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    seed = f"{sys.executable}\0{top}\0".encode()
    crc, adler = zlib.crc32(seed), zlib.adler32(seed)
    stack = [top]
    while stack:
        with os.scandir(stack.pop()) as found:
            entries = sorted(found, key=lambda e: e.name)
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "__pycache__":
                    stack.append(entry.path)
            elif entry.name.endswith((".py", ".json", ".yml", ".yaml", ".txt")):
                info = entry.stat()
                line = f"{entry.path}\0{info.st_size}\0{info.st_mtime_ns}\n".encode()
                crc, adler = zlib.crc32(line, crc), zlib.adler32(line, adler)
    return f"{crc:08x}{adler:08x}"


def _start_agent(path: str, key: str) -> None:
    import subprocess

    try:  # noqa: SIM105 - as above
        subprocess.Popen(
            [sys.executable, "-m", "smalt.cli.agent", path, key],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True,
        )  # fmt: skip
    except OSError:
        pass
