"""How far an upload or a download through a server has come, for one that takes more than a second.

On a terminal, one line updated in place (at most ten times a second)::

    Uploading corpus: 112.0 of 200.0 MB (56%)

elsewhere (a CI log), the same line every ``EVERY_S`` seconds; and when it is done, the total and
the time. A transfer done within ``DELAY_S`` says nothing. Standard library only, as ``rest``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Any

DELAY_S = 1.0
EVERY_S = 5.0
_TERMINAL_EVERY_S = 0.1


class Transfer:
    """Count the bytes of one transfer (``add``) and show them once it lasts; ``close`` ends it."""

    def __init__(self, verb: str, what: str, total: int | None = None, *, stream: IO[str] | None = None,
                 clock: Callable[[], float] = time.monotonic, delay_s: float | None = None) -> None:  # fmt: skip
        self._verb, self._what, self.total = verb, what, total
        self._stream = stream if stream is not None else sys.stderr
        self._clock, self._delay = clock, DELAY_S if delay_s is None else delay_s
        self._started = clock()
        self._shown_at: float | None = None
        self.done = 0
        try:
            self._terminal = self._stream.isatty()
        except (AttributeError, ValueError):
            self._terminal = False

    def add(self, count: int) -> None:
        self.done += count
        now = self._clock()
        if now - self._started < self._delay:
            return
        every = _TERMINAL_EVERY_S if self._terminal else EVERY_S
        if self._shown_at is None or now - self._shown_at >= every:
            self._show(self._line(), end="\r" if self._terminal else "\n")
            self._shown_at = now

    def close(self) -> None:
        """Say the total and the time, if anything was said."""
        if self._shown_at is not None:
            seconds = self._clock() - self._started
            self._show(f"{self._verb} {self._what}: {_mb(self.done)} MB in {seconds:.1f} s", end="\n")

    def __enter__(self) -> Transfer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _line(self) -> str:
        if not self.total:
            return f"{self._verb} {self._what}: {_mb(self.done)} MB"
        share = min(100, int(100 * self.done / self.total))
        return f"{self._verb} {self._what}: {_mb(self.done)} of {_mb(self.total)} MB ({share}%)"

    def _show(self, line: str, *, end: str) -> None:
        # A line updated in place is padded over what a longer one before it left.
        self._stream.write(("\r" if self._terminal else "") + line.ljust(60 if self._terminal else 0) + end)
        self._stream.flush()


class Counted:
    """A file read through (``read``), each block counted into ``transfer``: what http.client sends."""

    def __init__(self, file: IO[bytes], transfer: Transfer) -> None:
        self._file, self._transfer = file, transfer

    def read(self, size: int = -1) -> bytes:
        block = self._file.read(size)
        self._transfer.add(len(block))
        return block

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def _mb(count: int) -> str:
    return f"{count / 1_000_000:.1f}"
