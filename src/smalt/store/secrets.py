"""Encryption at rest for secrets (datastore credentials, later keys and client secrets)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from smalt.errors import ConfigurationError
from smalt.store.publish import publish_file

KEY_ENV = "SMALT_SECRET_KEY"


class SecretBox:
    """Encrypts and decrypts small JSON secrets with a Fernet key (AES-128-CBC and HMAC-SHA256).

    The key comes from ``SMALT_SECRET_KEY`` (teams share it) or from ``secret.key`` in the
    workspace folder, created with mode 0600 on first use.
    """

    def __init__(self, key: bytes) -> None:
        from cryptography.fernet import Fernet  # imported here: only commands with secrets pay for it

        try:
            self._fernet = Fernet(key)
        except ValueError as exc:
            raise ConfigurationError(
                "The secret key is not a valid Fernet key.",
                hint=f"set {KEY_ENV} to the output of "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`",
            ) from exc

    @classmethod
    def for_workspace(cls, folder: Path) -> SecretBox:
        env = os.environ.get(KEY_ENV)
        if env:
            return cls(env.encode())
        path = folder / "secret.key"
        if not path.exists():
            from cryptography.fernet import Fernet

            publish_file(path, Fernet.generate_key(), mode=0o600)
        elif path.stat().st_mode & 0o077:
            path.chmod(0o600)  # a key made by an older smalt, or copied in, is its owner's alone
        return cls(path.read_bytes().strip())

    def seal(self, secrets: dict[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(secrets, sort_keys=True).encode()).decode()

    def open(self, token: str) -> dict[str, str]:
        from cryptography.fernet import InvalidToken

        try:
            value = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise ConfigurationError(
                "Stored credentials cannot be decrypted with this workspace's secret key.",
                hint=f"use the same {KEY_ENV} (or secret.key) that stored them, or create the "
                "datastore again with its credentials",
            ) from exc
        assert isinstance(value, dict)
        return {str(k): str(v) for k, v in value.items()}
