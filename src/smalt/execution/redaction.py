"""Secrets kept out of captured logs: a job given a connection's secret writes its output through a
pipe, and a thread copies it to the log with every secret replaced by ``***``.

A secret split across two reads is still found: the last ``longest - 1`` bytes of each read are
held back until the next one (or the end). Jobs that were given no secret write to their log
directly, as before.
"""

from __future__ import annotations

import os
import threading
from typing import IO

MASK = b"***"


class Redactor:
    """One pipe into ``log``; ``writer`` is what the process writes to (its stdout and stderr)."""

    def __init__(self, log: IO[bytes], secrets: list[str]) -> None:
        self._log = log
        # Longest first: a secret that holds another is masked whole.
        self._secrets = sorted({s.encode() for s in secrets if s}, key=len, reverse=True)
        self._keep = max((len(s) for s in self._secrets), default=1) - 1
        read, write = os.pipe()
        self._read = os.fdopen(read, "rb", buffering=0)
        self.writer: IO[bytes] = os.fdopen(write, "wb", buffering=0)
        self._thread = threading.Thread(target=self._copy, name="redactor", daemon=True)
        self._thread.start()

    def _mask(self, data: bytes) -> bytes:
        for secret in self._secrets:
            data = data.replace(secret, MASK)
        return data

    def _copy(self) -> None:
        pending = b""
        while block := self._read.read(1 << 16):
            pending = self._mask(pending + block)
            cut = max(0, len(pending) - self._keep)
            # The held-back tail may begin a secret; everything before it is final.
            self._log.write(pending[:cut])
            self._log.flush()
            pending = pending[cut:]
        self._log.write(self._mask(pending))
        self._log.flush()
        self._read.close()

    def started(self) -> None:
        """The process has its copy of the pipe: close this one, so the end of its output ends the copy."""
        self.writer.close()

    def finish(self, timeout: float = 10.0) -> None:
        """Wait until everything written has reached the log."""
        if not self.writer.closed:
            self.writer.close()
        self._thread.join(timeout)
