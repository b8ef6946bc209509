"""A doorbell between processes on one machine: a named pipe that one process waits on and any
other rings. A pipeline's driver waits on its own; a step's supervisor rings it when the step ends,
so that the next step starts at once instead of at the driver's next poll. Whoever follows a job
(``job stream``) waits on a doorbell of its own in the job's ``watchers/`` folder, and the job's
end rings them all."""

from __future__ import annotations

import contextlib
import os
import select
from pathlib import Path


class Doorbell:
    """The waiting side. ``wait`` returns early when rung, else after ``timeout_s``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with contextlib.suppress(FileExistsError):
            os.mkfifo(path, 0o600)
        # Our own write end keeps the pipe open, so reads never see end-of-file between rings.
        self._read = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self._write = os.open(path, os.O_WRONLY | os.O_NONBLOCK)

    def wait(self, timeout_s: float) -> bool:
        """True if rung (every ring so far is consumed)."""
        ready, _, _ = select.select([self._read], [], [], timeout_s)
        if not ready:
            return False
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass
        return True

    def close(self) -> None:
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def ring(path: Path) -> None:
    """Ring the doorbell at ``path``, if anyone waits on it; never blocks, never fails."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # no such pipe, or no one waiting on it (ENXIO)
        return
    with contextlib.suppress(OSError):
        os.write(fd, b"!")
    os.close(fd)


def ring_all(folder: Path) -> None:
    """Ring every doorbell in ``folder`` (those of everyone following a job)."""
    with contextlib.suppress(FileNotFoundError):
        for bell in folder.iterdir():
            ring(bell)
