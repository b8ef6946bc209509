"""Encryption at rest for secrets (datastore credentials, connection secrets, endpoint keys), and
the files of the key that encrypts them, which ``smalt workspace sync-keys`` rotates.

A workspace's key is ``secret.key`` in its folder (mode 0600), or ``SMALT_SECRET_KEY``. During a
rotation the new key waits in ``secret.key.next``; after it, the old one is kept as
``secret.key.previous``. Every key there decrypts; only ``secret.key`` encrypts. So a rotation
stopped at any moment leaves every secret readable, and a process that sealed something with the
old key while the rotation ran (it read the key before) left something still readable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from smalt.errors import ConfigurationError
from smalt.store.publish import publish_file

KEY_ENV = "SMALT_SECRET_KEY"
KEY_FILE, NEXT_KEY, PREVIOUS_KEY = "secret.key", "secret.key.next", "secret.key.previous"


def _fernet(key: bytes) -> Any:
    from cryptography.fernet import Fernet  # imported here: only commands with secrets pay for it

    try:
        return Fernet(key)
    except ValueError as exc:
        raise ConfigurationError(
            "The secret key is not a valid Fernet key.",
            hint=f"set {KEY_ENV} to the output of "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`",
        ) from exc


class SecretBox:
    """Encrypts and decrypts small JSON secrets with Fernet (AES-128-CBC and HMAC-SHA256).

    The key comes from ``SMALT_SECRET_KEY`` (teams share it) or from ``secret.key`` in the
    workspace folder, created with mode 0600 on first use. A box made for a folder notices a key
    rotated by another process and reads the files again.
    """

    def __init__(self, key: bytes, *, folder: Path | None = None, others: list[bytes] | None = None) -> None:
        from cryptography.fernet import MultiFernet

        self._folder = folder
        self._primary = _fernet(key)
        self._all = MultiFernet([self._primary, *(_fernet(k) for k in others or [])])
        self._seen = self._stamp()

    @classmethod
    def for_workspace(cls, folder: Path) -> SecretBox:
        env = os.environ.get(KEY_ENV)
        if env:
            return cls(env.encode())
        path = folder / KEY_FILE
        if not path.exists():
            from cryptography.fernet import Fernet

            publish_file(path, Fernet.generate_key(), mode=0o600)
        elif path.stat().st_mode & 0o077:
            path.chmod(0o600)  # a key made by an older smalt, or copied in, is its owner's alone
        others = [(folder / name).read_bytes().strip() for name in (NEXT_KEY, PREVIOUS_KEY) if (folder / name).exists()]
        return cls(path.read_bytes().strip(), folder=folder, others=others)

    def _stamp(self) -> tuple[int, int] | None:
        if self._folder is None:
            return None
        try:
            found = os.stat(self._folder / KEY_FILE)
        except OSError:
            return None
        return found.st_ino, found.st_mtime_ns

    def _current(self) -> SecretBox:
        """This box, or, when the key file changed since it was read (a rotation), a fresh one."""
        if self._folder is not None and self._stamp() != self._seen:
            fresh = SecretBox.for_workspace(self._folder)
            self._primary, self._all, self._seen = fresh._primary, fresh._all, fresh._seen
        return self

    def seal(self, secrets: dict[str, str]) -> str:
        box = self._current()
        return str(box._primary.encrypt(json.dumps(secrets, sort_keys=True).encode()).decode())

    def open(self, token: str) -> dict[str, str]:
        from cryptography.fernet import InvalidToken

        box = self._current()
        try:
            value = json.loads(box._all.decrypt(token.encode()))
        except InvalidToken:
            if self._folder is None:
                raise _undecryptable() from None
            # A rotation may have finished since this box read its keys.
            self._seen = None
            box = self._current()
            try:
                value = json.loads(box._all.decrypt(token.encode()))
            except InvalidToken:
                raise _undecryptable() from None
        assert isinstance(value, dict)
        return {str(k): str(v) for k, v in value.items()}

    def reseal(self, token: str, new: SecretBox) -> str:
        """``token`` decrypted with any key here and encrypted with ``new``'s."""
        return new.seal(self.open(token))


def _undecryptable() -> ConfigurationError:
    return ConfigurationError(
        "Stored secrets cannot be decrypted with this workspace's secret key.",
        hint=f"use the same {KEY_ENV} (or secret.key) that stored them, or create the "
        "datastore, connection or endpoint again with its secrets",
    )
