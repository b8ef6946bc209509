"""What a job's log says while its environment is built: the phase, the time so far, the end.

A build that installs packages takes from seconds to minutes, and ``smalt job create --stream``
follows the job's log; so the supervisor reports the build there (uv's own output stays in
``build_log.txt``)::

    smalt: Preparing: building environment tiny:1 (digest 3f2a1b9c0d4e; Python 3.11; 1 package)
    smalt: Preparing: creating a virtual environment with pip (0.0 s)
    smalt: Preparing: resolving 1 requirement (1.2 s)
    smalt: Preparing: resolved 4 packages; downloading and building what uv has not cached (1.9 s)
    smalt: Preparing: resolved 4 packages; downloading and building what uv has not cached (6.9 s)
    smalt: Preparing: installing (3 packages downloaded or built) (9.5 s)
    smalt: Preparing: installed 4 packages; compiling bytecode (9.8 s)
    smalt: Preparing: environment tiny:1 ready in 12 s

A phase that lasts is said again every ``EVERY_S`` seconds (the repeated line above). An
environment that is built already says nothing, and neither does one that installs nothing
(``uv venv`` alone, a fraction of a second) unless it takes longer than ``QUIET_S``: a job's log
stays its command's output.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

from smalt.environments.resolve import ResolvedEnvironment

#: How often a line is written while a phase goes on.
EVERY_S = 5.0
#: How long a build that installs no package may take before it is reported.
QUIET_S = 5.0
PREFIX = "smalt: Preparing: "


class BuildProgress:
    """Report the build of ``resolved`` through ``say`` (one line at a time), as a context manager
    around :func:`~smalt.environments.ensure`, which calls :meth:`phase` when the build starts and
    as it goes. Nothing is said until the first phase, nor before ``quiet_s`` have passed since."""

    def __init__(self, resolved: ResolvedEnvironment, say: Callable[[str], None], *, quiet_s: float | None = None,
                 every_s: float = EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._resolved, self._say, self._clock, self._every = resolved, say, clock, every_s
        self._quiet = quiet_s if quiet_s is not None else (0.0 if resolved.requirements else QUIET_S)
        self._started = clock()
        self._phase: str | None = None
        self._last_line = self._started
        self._shown = False
        self._done = False
        self._changed = threading.Condition()
        self._ticker = threading.Thread(target=self._tick, name="environment-progress", daemon=True)

    def __enter__(self) -> BuildProgress:
        self._started = self._clock()
        self._ticker.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:  # fmt: skip
        with self._changed:
            self._done = True
            self._changed.notify_all()
        self._ticker.join()
        if self._shown:
            label, seconds = self._resolved.label, self._seconds()
            self._line(f"{label} ready in {seconds}" if kind is None else f"building {label} failed after {seconds}")

    def phase(self, text: str) -> None:
        """The build entered a phase (``"resolving 3 requirements"``); said at once when the build
        is being reported, and again every ``every_s`` while it lasts."""
        with self._changed:
            self._phase = text
            if self._shown:
                self._line(f"{text} ({self._seconds()})")
            elif self._clock() - self._started >= self._quiet:
                self._show()
            self._changed.notify_all()

    def _seconds(self) -> str:
        seconds = self._clock() - self._started
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"

    def _line(self, text: str) -> None:
        self._last_line = self._clock()
        self._say(PREFIX + text)

    def _show(self) -> None:
        resolved, count = self._resolved, len(self._resolved.requirements)
        python = f"Python {resolved.python}" if resolved.python else "smalt's own Python"
        packages = f"{count} package{'s' if count != 1 else ''}" if count else "no packages"
        self._shown = True
        self._line(f"building {resolved.label} (digest {resolved.digest[:12]}; {python}; {packages})")
        self._line(f"{self._phase} ({self._seconds()})")

    def _tick(self) -> None:
        with self._changed:
            while not self._done:
                if self._phase is None:
                    self._changed.wait()
                    continue
                now = self._clock()
                due = self._last_line + self._every if self._shown else self._started + self._quiet
                if now < due:
                    self._changed.wait(due - now)
                elif self._shown:
                    self._line(f"{self._phase} ({self._seconds()})")
                else:
                    self._show()
