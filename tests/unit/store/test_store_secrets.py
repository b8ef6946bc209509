"""SecretBox: datastore credentials encrypted at rest with the workspace's key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from smalt.errors import ConfigurationError
from smalt.store.secrets import KEY_ENV, SecretBox

SECRETS = {"account_key": "bm90LWEtcmVhbC1rZXk=", "client_secret": "s3cr3t-value-42"}


def test_seal_and_open_round_trip() -> None:
    box = SecretBox(Fernet.generate_key())
    assert box.open(box.seal(SECRETS)) == SECRETS
    assert box.open(box.seal({})) == {}


def test_token_does_not_contain_the_plaintext() -> None:
    box = SecretBox(Fernet.generate_key())
    token = box.seal(SECRETS)
    for name, value in SECRETS.items():
        assert value not in token
        assert name not in token


def test_sealing_twice_gives_different_tokens() -> None:
    box = SecretBox(Fernet.generate_key())
    assert box.seal(SECRETS) != box.seal(SECRETS)


def test_a_wrong_key_is_a_configuration_error_with_a_hint() -> None:
    token = SecretBox(Fernet.generate_key()).seal(SECRETS)
    with pytest.raises(ConfigurationError) as info:
        SecretBox(Fernet.generate_key()).open(token)
    assert "cannot be decrypted" in info.value.message
    assert info.value.hint is not None and KEY_ENV in info.value.hint
    assert SECRETS["client_secret"] not in str(info.value)


def test_a_tampered_token_is_a_configuration_error() -> None:
    box = SecretBox(Fernet.generate_key())
    token = box.seal(SECRETS)
    with pytest.raises(ConfigurationError):
        box.open(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"))


def test_an_invalid_key_is_a_configuration_error_with_a_hint() -> None:
    with pytest.raises(ConfigurationError) as info:
        SecretBox(b"not-a-fernet-key")
    assert info.value.hint is not None and KEY_ENV in info.value.hint


def test_workspace_key_file_is_created_with_mode_0600(tmp_path: Path) -> None:
    box = SecretBox.for_workspace(tmp_path)
    key_file = tmp_path / "secret.key"
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    token = box.seal(SECRETS)
    # A later process reads the same key from the file.
    assert SecretBox.for_workspace(tmp_path).open(token) == SECRETS


def test_workspace_key_file_is_kept(tmp_path: Path) -> None:
    SecretBox.for_workspace(tmp_path)
    key = (tmp_path / "secret.key").read_bytes()
    SecretBox.for_workspace(tmp_path)
    assert (tmp_path / "secret.key").read_bytes() == key


def test_env_key_is_used_and_no_key_file_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = Fernet.generate_key()
    monkeypatch.setenv(KEY_ENV, key.decode())
    token = SecretBox.for_workspace(tmp_path).seal(SECRETS)
    assert not (tmp_path / "secret.key").exists()
    # Another workspace sharing the key (a team) opens it; one without it cannot.
    assert SecretBox.for_workspace(tmp_path / "other").open(token) == SECRETS
    assert SecretBox(key).open(token) == SECRETS
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ConfigurationError):
        SecretBox.for_workspace(tmp_path).open(token)


def test_an_invalid_env_key_is_a_configuration_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "too-short")
    with pytest.raises(ConfigurationError, match="not a valid Fernet key"):
        SecretBox.for_workspace(tmp_path)
