"""Publishing a small file whole: once, even when several processes race to create it
(``publish_file``), or in place of what is there (``replace_file``)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def publish_file(path: Path, data: bytes, *, mode: int = 0o644) -> bool:
    """Create ``path`` holding ``data`` unless it exists; True when this call created it.

    The bytes are written and flushed to a temporary file first and then hard-linked into place:
    a reader never sees a half-written file, and when two processes race, the first link wins and
    the loser's bytes are discarded.
    """
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        temporary.unlink(missing_ok=True)


def replace_file(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` at once (written and flushed to disk aside, then renamed over
    it), with ``mode`` (by default its owner's alone: such files hold secrets or keys)."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
