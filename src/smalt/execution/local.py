"""The local backend: jobs as process trees on this machine, bounded per compute by slot locks.

A compute with ``max_instances: N`` has N slot lock files; a job holds one while it runs (an
``flock``). The operating system drops a lock when its holder dies, so a killed supervisor never
keeps a slot.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import select
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from smalt.execution.doorbell import Doorbell, ring_all

#: Under a compute's slot folder: the doorbells of the jobs waiting for a slot.
SLOT_WAITERS = "waiters"


@dataclass
class ComputeSlot:
    path: Path
    index: int
    #: The open lock file: closing it drops the lock. Not inherited by what the job runs (PEP 446).
    fd: int

    def release(self) -> None:
        """Free the slot, and wake the jobs waiting for one (the first to try takes it)."""
        os.close(self.fd)
        ring_all(self.path.parent / SLOT_WAITERS)


def acquire_slot(
    folder: Path, slots: int, *, should_stop: Callable[[], bool], poll_s: float = 0.2
) -> ComputeSlot | None:
    """Wait for one of ``slots`` slots under ``folder``; None if ``should_stop()`` turns true first
    (asked every ``poll_s``). A waiting job is woken the moment a slot is released."""
    folder.mkdir(parents=True, exist_ok=True)
    locks = [folder / f"slot-{i}.lock" for i in range(max(1, slots))]
    slot = _try_slots(locks)
    if slot is not None or should_stop():
        return slot
    (folder / SLOT_WAITERS).mkdir(exist_ok=True)
    # The bell exists before each try, so a release between a try and the wait still wakes it.
    bell = Doorbell(folder / SLOT_WAITERS / f"{os.getpid()}-{secrets.token_hex(4)}")
    try:
        while (slot := _try_slots(locks)) is None:
            if should_stop():
                return None
            bell.wait(poll_s)
        return slot
    finally:
        bell.close()


def _try_slots(locks: list[Path]) -> ComputeSlot | None:
    # flock itself, not the filelock package: this runs once per job in a freshly forked process,
    # where filelock's bookkeeping cost about 1.5 ms against 0.3.
    for index, path in enumerate(locks):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return ComputeSlot(path, index, fd)
    return None


def pid_alive(pid: int) -> bool:
    import psutil

    try:
        process = psutil.Process(pid)
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


#: The watchdog of a job's processes (``ProcessGroup``), for ``/bin/sh``: it reads their process
#: group ids, one a line, from a pipe that only the supervisor writes to. Told ``end``, it leaves
#: them be; at the end of the pipe without it (the supervisor died: the kernel closes the pipe of a
#: process killed even by SIGKILL) it kills every group it was told of.
_WATCHDOG = 'while read -r g; do [ "$g" = end ] && exit 0; set -- "$@" "$g"; done; for g; do kill -9 -"$g"; done'


@dataclass
class ProcessGroup:
    """The processes of one job (one per rank for distributed jobs), each in its own session, and
    their watchdog: a job's processes do not outlive its supervisor.

    The watchdog is the first line: it stops the whole process tree the moment the supervisor dies,
    grandchildren included (``PR_SET_PDEATHSIG`` would reach only the shell, and needs a
    ``preexec_fn``, unsafe in the supervisor's threads). The second line is the reaper
    (services/jobs.py), which kills the groups recorded in the job's ``process_groups`` file.
    """

    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    watchdog: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, command: str, cwd: Path, envs: list[dict[str, str]], logs: list[IO[bytes]],
              record: Path | None = None) -> ProcessGroup:  # fmt: skip
        """Start ``command`` once per environment. ``record``: a file to write the process groups'
        ids to, for whoever finds this process dead (the reaper)."""
        group = cls()
        # The watchdog is started first and told of each process the moment it exists: a
        # supervisor killed at any moment after a command started leaves nothing running.
        group.watchdog = _start_watchdog()
        for env, log in zip(envs, logs, strict=True):
            process = subprocess.Popen(
                ["bash", "-c", command],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            group._tell_watchdog(str(process.pid))
            group.processes.append(process)
            if record is not None:
                record.write_text(" ".join(str(p.pid) for p in group.processes))
        return group

    def _tell_watchdog(self, line: str) -> None:
        if self.watchdog is None or self.watchdog.stdin is None:
            return
        try:
            self.watchdog.stdin.write(line.encode() + b"\n")
            self.watchdog.stdin.flush()
        except (OSError, ValueError):  # the watchdog is gone: the reaper is still there
            self.watchdog = None

    def close(self) -> None:
        """Dismiss the watchdog: the processes ended, or were stopped, with the supervisor alive
        (what they left running in the background is left, as before there was a watchdog).
        ``poll`` and ``kill`` do it when the processes have ended."""
        watchdog, self.watchdog = self.watchdog, None
        if watchdog is None:
            return
        with contextlib.suppress(OSError, ValueError):
            assert watchdog.stdin is not None
            watchdog.stdin.write(b"end\n")
            watchdog.stdin.close()
        # Not waited for here (about 1 ms a job): it exits at once, and is reaped at the next close.
        _dismissed[:] = [w for w in _dismissed if w.poll() is None]
        _dismissed.append(watchdog)

    def poll(self) -> int | None:
        """None while any process runs; else the first non-zero exit code, or 0 (and the watchdog
        is dismissed)."""
        codes = [p.poll() for p in self.processes]
        if any(c is None for c in codes):
            failed = [c for c in codes if c not in (None, 0)]
            if failed:  # one rank failed: the job has failed, stop the others
                self.kill()
                return failed[0]
            return None
        self.close()
        return next((c for c in codes if c != 0), 0)

    def wait(self, timeout_s: float) -> int | None:
        """poll(), after waiting up to ``timeout_s`` for a process to end: woken the moment one
        does (a pidfd per process, on Linux), where a sleep, or Popen.wait's growing naps, cost
        every short job up to their length."""
        running = [p for p in self.processes if p.poll() is None]
        if running:
            _wait_for_any(running, timeout_s)
        return self.poll()

    def kill(self, grace_s: float = 3.0) -> None:
        """Stop every process tree: SIGTERM to each session, then SIGKILL to what is left."""
        import psutil

        trees: list[psutil.Process] = []
        for process in self.processes:
            try:
                parent = psutil.Process(process.pid)
                trees.extend([parent, *parent.children(recursive=True)])
            except psutil.NoSuchProcess:
                pass
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
        alive = _wait_gone(trees, grace_s)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self.close()


#: Watchdogs told to end, not yet reaped.
_dismissed: list[subprocess.Popen[bytes]] = []


def _start_watchdog() -> subprocess.Popen[bytes] | None:
    try:
        return subprocess.Popen(
            ["/bin/sh", "-c", _WATCHDOG], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    except OSError:  # no /bin/sh: the reaper alone stops what a dead supervisor left
        return None


def _wait_for_any(processes: list[subprocess.Popen[bytes]], timeout_s: float) -> None:
    """Until one of ``processes`` ends, or ``timeout_s``."""
    fds: list[int] = []
    try:
        try:
            fds = [os.pidfd_open(p.pid) for p in processes]
        except (AttributeError, OSError):  # no pidfds here (not Linux, or a kernel before 5.3)
            with contextlib.suppress(subprocess.TimeoutExpired):
                processes[0].wait(timeout_s)
            return
        select.select(fds, [], [], timeout_s)
    finally:
        for fd in fds:
            os.close(fd)


def _wait_gone(processes: list[Any], timeout_s: float) -> list[Any]:
    """Wait until every process has exited; zombies count as gone (nobody may be reaping them)."""
    import psutil

    deadline = time.monotonic() + timeout_s
    while True:
        alive = []
        for proc in processes:
            try:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.02)


def stop_process_groups(record: Path) -> None:
    """Stop the process groups listed in ``record`` (left behind by a supervisor that died)."""
    try:
        pids = [int(p) for p in record.read_text().split()]
    except (OSError, ValueError):
        return
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
