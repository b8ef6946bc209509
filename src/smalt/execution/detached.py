"""Starting a job's supervisor or a pipeline's driver as a detached process, warm.

A fresh interpreter spends about half a second importing smalt before it can do anything. So:

- a single-threaded process (the CLI) forks itself: the child starts with everything imported;
- a multithreaded one (``smalt server``, a notebook) must not fork itself, so it asks its fork
  server: one ``python -m smalt.execution.detached`` child, started on first use with the modules
  preloaded, single-threaded, that forks on demand. Only the first start pays the imports.

(The standard library's ``multiprocessing`` forkserver would re-run the caller's ``__main__`` script
in every child, which a notebook or a plain script cannot have.) Either way the process is detached
(a session of its own), so it outlives the command that started it, and it is reaped: by the
kernel (the fork server ignores SIGCHLD), or by its starter (``fork_detached``).

A process that keeps a fork server for a workspace (``smalt server``, through ``warm_up``) is
resident: every REAP_EVERY_S it has the fork server fork a reaper for that workspace (the
``reap_workspace(path)`` of the preloaded modules), which settles the jobs whose supervisor or
driver died. A fork server that died is replaced by the next of these requests.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import IO, Any, NoReturn

from smalt.errors import BackendError

#: The modules whose ``main`` runs detached; preloaded by the fork server, which calls their
#: ``warm_up()`` and, for a workspace it is told of, ``warm_workspace(path)``, where they have them.
PRELOAD = ("smalt.services.supervisor", "smalt.services.pipelines")
#: How often a resident process has the jobs of its workspace reaped: a job whose supervisor or
#: driver died is settled within this (plus the reaping itself), with no smalt command run.
REAP_EVERY_S = 5.0
#: A test seam: the first process to reach the point ``SMALT_CRASH_AT`` names dies there (SIGKILL,
#: as ``kill -9`` would), once: whoever creates the file ``SMALT_CRASH_FLAG``. See ``crash_point``.
CRASH_ENV, CRASH_FLAG_ENV = "SMALT_CRASH_AT", "SMALT_CRASH_FLAG"


def crash_point(point: str) -> None:
    """Die here if ``SMALT_CRASH_AT`` names ``point`` and its flag file does not exist yet: how the
    crash tests kill a supervisor or a driver at one exact moment, with no timing involved."""
    if os.environ.get(CRASH_ENV) != point:
        return
    try:
        os.close(os.open(os.environ[CRASH_FLAG_ENV], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except (KeyError, OSError):  # no flag file named, or crashed there once already
        return
    os.kill(os.getpid(), signal.SIGKILL)


def start(module: str, argv: list[str], log: Path, *, before_fork: Callable[[], None] = lambda: None) -> None:
    """Run ``<module>.main(argv)`` detached, its output appended to ``log``, with this process's
    environment and working directory. ``before_fork`` runs first when this process forks itself
    (e.g. to drop pooled database connections, which a child must not share)."""
    crash_point(f"start:{module}")
    if threading.active_count() == 1:
        main = import_module(module).main  # imported before forking, so the child starts warm
        if not _spares.hand_over(module, argv, log):
            before_fork()
            fork_detached(main, argv, log)
        if _spares.wanted is not None:
            before_fork()
            _spares.fork(_spares.wanted)
        return
    _server.start(module, argv, log)


def keep_spare(warm: Callable[[], None] = lambda: None) -> None:
    """From now on, keep one detached child forked ahead of need, which the next ``start`` of this
    process hands its work to: the fork, and whatever ``warm`` does in the child (e.g. open a
    database connection), are paid while nothing waits for them. For a single-threaded process
    that starts many (a pipeline's driver, one supervisor per step). The spare leaves when this
    process exits (the end of its pipe)."""
    _spares.wanted = warm


class _Spares:
    """The one spare child of this process: its pid and the write end of the pipe it reads its
    work from (a JSON line: module, argv, log)."""

    def __init__(self) -> None:
        self.wanted: Callable[[], None] | None = None
        self._child: tuple[int, int] | None = None

    def hand_over(self, module: str, argv: list[str], log: Path) -> bool:
        """Whether the spare took the work; False if there is none, or it is gone."""
        child, self._child = self._child, None
        if child is None:
            return False
        pid, pipe = child
        try:
            alive = os.waitpid(pid, os.WNOHANG)[0] == 0
            if alive:  # one write of less than PIPE_BUF bytes: the spare reads all of it or none
                os.write(pipe, json.dumps({"module": module, "argv": argv, "log": str(log)}).encode() + b"\n")
        except (ChildProcessError, BrokenPipeError):
            alive = False
        finally:
            os.close(pipe)
        if alive:
            _forked.add(pid)
        return alive

    def fork(self, warm: Callable[[], None]) -> None:
        _reap()
        read, write = os.pipe()
        os.set_inheritable(write, False)
        pid = os.fork()
        if pid == 0:
            os.close(write)
            _spare_child(read, warm)
        os.close(read)
        self._child = (pid, write)


_spares = _Spares()


def _spare_child(pipe: int, warm: Callable[[], None]) -> NoReturn:
    """A spare: detached at once, warmed, then waiting for its work; it exits at the end of the pipe."""
    code = 0
    try:
        os.setsid()
        with contextlib.suppress(Exception):  # a failed warm-up costs only speed
            warm()
        line = b""
        while not line.endswith(b"\n"):
            chunk = os.read(pipe, 65536)
            if not chunk:
                os._exit(0)  # the parent exited, or handed its work to a new child instead
            line += chunk
        os.close(pipe)
        work = json.loads(line)
        _detached_child(import_module(work["module"]).main, work["argv"], Path(work["log"]), session=False)
    except BaseException:  # noqa: BLE001 - the child must never return into its parent's code
        code = 1
    os._exit(code)


def warm_up(workspace: Path | None = None) -> None:
    """Start the fork server now, in the background, so that the first job does not wait for it;
    with ``workspace``, have it open that workspace too, for every process it forks, and reap that
    workspace's jobs every REAP_EVERY_S while this process runs."""
    threading.Thread(target=_server.warm_up, args=(workspace,), daemon=True).start()
    if workspace is not None:
        _server.reap_periodically(workspace)


class _ForkServer:
    """The parent's end: one request line (JSON) per start, one answer line back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._stopped = threading.Event()
        self._reaped: set[Path] = set()

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is not None:
            self._discard()
        if self._process is None:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "smalt.execution.detached"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )  # fmt: skip
            atexit.register(self.stop)
        return self._process

    def _ask(self, request: dict[str, Any]) -> bool:
        process = self._running()
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(json.dumps(request).encode() + b"\n")
            process.stdin.flush()
            return process.stdout.readline().strip() == b"ok"
        except OSError:
            return False

    def warm_up(self, workspace: Path | None) -> None:
        with self._lock:
            if workspace is None:
                self._running()
            else:
                self._ask({"warm": str(workspace)})

    def reap_periodically(self, workspace: Path) -> None:
        """Ask for a reaper of ``workspace`` every REAP_EVERY_S, from a thread of this process,
        until it exits (once per workspace)."""
        with self._lock:
            if workspace in self._reaped:
                return
            self._reaped.add(workspace)
        threading.Thread(target=self._reap_loop, args=(workspace,), name="smalt-reaper", daemon=True).start()

    def _reap_loop(self, workspace: Path) -> None:
        request = {"reap": str(workspace)}
        while not self._stopped.wait(REAP_EVERY_S):
            with self._lock:
                if not self._stopped.is_set() and not self._ask(request):
                    self._discard()  # replaced at the next request

    def start(self, module: str, argv: list[str], log: Path) -> None:
        request = {"module": module, "argv": argv, "log": str(log), "env": dict(os.environ), "cwd": os.getcwd()}
        with self._lock:
            # A fork server that died (killed?) is replaced once; its loss costs only speed.
            for _ in range(2):
                if self._ask(request):
                    return
                self._discard()
        raise BackendError(f"Could not start {module} for {argv[-1]}: the fork server failed twice.",
                           hint=f"see {log}, and the standard error of this process")  # fmt: skip

    def _discard(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(OSError):
                process.kill()
            self._close(process)

    def stop(self) -> None:
        """Let the fork server end (it stops at the end of its input); detached processes run on."""
        self._stopped.set()
        process, self._process = self._process, None
        if process is not None:
            self._close(process)

    @staticmethod
    def _close(process: subprocess.Popen[bytes]) -> None:
        for pipe in (process.stdin, process.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_server = _ForkServer()


def _in_context(main: Callable[[list[str]], int], env: dict[str, str], cwd: str, argv: list[str]) -> int:
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    return main(argv)


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The fork server's loop: preload, then fork one detached process per request until EOF."""
    modules = [import_module(name) for name in PRELOAD]
    mains = {module.__name__: module.main for module in modules}
    for module in modules:
        if hasattr(module, "warm_up"):
            module.warm_up()
    # The kernel reaps the children, so one fork each is enough and none lingers as a zombie.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    for line in requests:
        request = json.loads(line)
        if "reap" in request:  # in a child of its own: a slow reaper never holds up a start
            workspace = Path(request["reap"])
            reapers = [m.reap_workspace for m in modules if hasattr(m, "reap_workspace")]
            with contextlib.suppress(OSError):  # a workspace deleted meanwhile has nothing to reap
                (workspace / "jobs").mkdir(exist_ok=True)
                reap = functools.partial(_run_reapers, reapers)
                _fork_once(reap, [str(workspace)], workspace / "jobs" / ".reaper.log")
            answers.write(b"ok\n")
            answers.flush()
            continue
        if "warm" in request:  # open a workspace once, for every child (a failure costs only speed)
            with contextlib.suppress(Exception):
                for module in modules:
                    if hasattr(module, "warm_workspace"):
                        module.warm_workspace(Path(request["warm"]))
            answers.write(b"ok\n")
            answers.flush()
            continue
        main = mains.get(request["module"]) or import_module(request["module"]).main
        run = functools.partial(_in_context, main, request["env"], request["cwd"])
        _fork_once(run, request["argv"], Path(request["log"]))
        answers.write(b"ok\n")
        answers.flush()


def _run_reapers(reapers: list[Callable[[Path], None]], argv: list[str]) -> int:
    for reap in reapers:
        reap(Path(argv[0]))
    return 0


def _fork_once(main: Callable[[list[str]], int], argv: list[str], log: Path) -> None:
    """``fork_detached`` with one fork instead of two, for the fork server (which ignores SIGCHLD)."""
    if os.fork():
        return
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the child waits for its own children
    _detached_child(main, argv, log)


#: The detached children this process forked and has not yet reaped.
_forked: set[int] = set()


def fork_detached(main: Callable[[list[str]], int], argv: list[str], log: Path) -> None:
    """Run ``main(argv)`` in a detached child of this process (new session), its output appended
    to ``log``. Only safe from a single-threaded process.

    One fork, not the classic two (a second fork of a process this size costs each start about
    6 ms): the children this process forked are reaped at its next start, and adopted by init
    when it exits, so a finished one lingers as a zombie only until then (and counts as gone:
    ``pid_alive``). Only these pids are waited for, never any child (that would steal
    ``subprocess``'s)."""
    _reap()
    child = os.fork()
    if child == 0:
        _detached_child(main, argv, log)
    _forked.add(child)


def _reap() -> None:
    for pid in list(_forked):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _forked.discard(pid)


def _detached_child(main: Callable[[list[str]], int], argv: list[str], log: Path, *, session: bool = True) -> NoReturn:
    """In a new child: a session of its own (``session``: made here), output to ``log``, then
    ``main(argv)`` and exit."""
    code = 1
    try:
        if session:
            os.setsid()
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        code = main(argv)
    except BaseException:  # noqa: BLE001 - the child must never return into its parent's code
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
