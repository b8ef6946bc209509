"""Credentials for ``smalt server``, shaped like azure-identity's, so that code and CI written for
Azure ML authenticate unchanged: each has ``get_token(*scopes)`` returning ``AccessToken(token,
expires_on)``.

- ``ClientSecretCredential(tenant_id, client_id, client_secret)``: a service principal; its secret
  is exchanged at the server's token endpoint (``/api/v1/token``) for an hour-long token, fetched
  again five minutes before it expires.
- ``TokenCredential(token)``: a token as it is (a personal access token, ``SMALT_TOKEN``).
- ``DefaultAzureCredential()``: the first that is there of ``AZURE_CLIENT_ID`` with
  ``AZURE_CLIENT_SECRET`` and ``AZURE_TENANT_ID``, then ``SMALT_TOKEN``, then what ``smalt login``
  stored for the server; no credential at all when none is.

``smalt login`` keeps one token per server in ``$XDG_CONFIG_HOME/smalt/credentials.json`` (else
``~/.config/smalt/``), readable by its owner alone. Standard library only.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, NamedTuple

#: A token is fetched again this long before it expires.
_EARLY_S = 300
_FOREVER = 2**31 - 1


class AccessToken(NamedTuple):
    """azure-core's ``AccessToken``: the token and when it expires (epoch seconds)."""

    token: str
    expires_on: int


class TokenCredential:
    """A token used as it is: a personal access token, or the server's ``SMALT_TOKEN``."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, _FOREVER)


class ClientSecretCredential:
    """A service principal's client id and secret, exchanged at the server for a short-lived token.

    ``authority`` is the server (``http://host:port``); by default the one the ``MLClient`` it is
    given to talks to, else ``SMALT_URL``."""

    def __init__(self, tenant_id: str, client_id: str, client_secret: str, *, authority: str | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        self.tenant_id, self.client_id, self._secret = tenant_id, client_id, client_secret
        self.authority = authority
        self._cached: AccessToken | None = None
        self._lock = threading.Lock()

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        with self._lock:
            if self._cached is None or self._cached.expires_on - _EARLY_S <= time.time():
                self._cached = self._fetch()
            return self._cached

    def _fetch(self) -> AccessToken:
        server = self.authority or os.environ.get("SMALT_URL")
        if not server:
            from smalt.errors import ConfigurationError

            raise ConfigurationError("A service principal's credential needs the server's address.",
                                     hint="set SMALT_URL, or pass authority= to ClientSecretCredential")  # fmt: skip
        form = {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self._secret,
                "tenant_id": self.tenant_id}  # fmt: skip
        answer = request_token(server, form)
        return AccessToken(str(answer["access_token"]), int(time.time()) + int(answer.get("expires_in", 3600)))


class DefaultAzureCredential:
    """The first credential there is (the module docstring gives the order), for one server."""

    def __init__(self, **kwargs: Any) -> None:
        self.authority: str | None = kwargs.get("authority")
        self._chosen: Any = None

    def for_server(self, url: str) -> Any:
        """The credential the chain finds for the server at ``url``, or None."""
        client_id, secret = os.environ.get("AZURE_CLIENT_ID"), os.environ.get("AZURE_CLIENT_SECRET")
        if client_id and secret:
            return ClientSecretCredential(os.environ.get("AZURE_TENANT_ID", ""), client_id, secret, authority=url)
        token = os.environ.get("SMALT_TOKEN")
        if token:
            return TokenCredential(token)
        stored = stored_login(url)
        return TokenCredential(stored) if stored else None

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        if self._chosen is None:
            server = self.authority or os.environ.get("SMALT_URL", "")
            self._chosen = self.for_server(server)
            if self._chosen is None:
                from smalt.errors import AuthenticationError

                said = "No credential found: no AZURE_CLIENT_ID/AZURE_CLIENT_SECRET, no SMALT_TOKEN, no stored login."
                raise AuthenticationError(said, hint="smalt login")
        token: AccessToken = self._chosen.get_token(*scopes, **kwargs)
        return token


def credential_for(url: str, credential: Any = None, token: str | None = None) -> Any:
    """What an ``MLClient`` for ``url`` authenticates with: ``token``, a credential of smalt's
    (one of azure-identity's would ask Microsoft Entra, which a smalt server is not: the default
    chain is used instead), else the default chain; None for no credential at all."""
    if token:
        return TokenCredential(token)
    if isinstance(credential, ClientSecretCredential):
        credential.authority = credential.authority or url
        return credential
    if isinstance(credential, TokenCredential):
        return credential
    if isinstance(credential, DefaultAzureCredential):
        return credential.for_server(credential.authority or url)
    return DefaultAzureCredential().for_server(url)


def request_token(server: str, form: dict[str, str]) -> dict[str, Any]:
    """POST ``form`` to the server's token endpoint; its answer, or the error it gave."""
    import http.client

    from smalt.errors import AuthenticationError, BackendError

    parts = urllib.parse.urlsplit(server)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    body = urllib.parse.urlencode(form).encode()
    try:
        connection.request("POST", parts.path.rstrip("/") + "/api/v1/token", body=body,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        response = connection.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise BackendError(f"Cannot reach the smalt server at {server}: {exc}.") from exc
    finally:
        connection.close()
    try:
        answer = json.loads(data)
    except ValueError:
        answer = {}
    if response.status != 200 or not isinstance(answer, dict) or "access_token" not in answer:
        said = answer.get("error_description") if isinstance(answer, dict) else None
        raise AuthenticationError(f"The smalt server at {server} refused the credential: {said or response.status}.",
                                  hint="check the client id and secret (or user name and password)")  # fmt: skip
    return answer


# -- the stored login -------------------------------------------------------------------------------
def _store() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "smalt" / "credentials.json"


def _server_key(url: str) -> str:
    return url.rstrip("/").lower()


def _read_store() -> dict[str, Any]:
    try:
        data = json.loads(_store().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def stored_login(url: str) -> str | None:
    """The token ``smalt login`` stored for the server at ``url``, unless it expired."""
    entry = _read_store().get("servers", {}).get(_server_key(url))
    if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
        return None
    if float(entry.get("expires_on") or _FOREVER) <= time.time():
        return None
    return str(entry["token"])


def store_login(url: str, token: str, principal: str, expires_on: float | None) -> Path:
    """Keep ``token`` for ``url`` (replacing one kept before), in a file its owner alone can read."""
    data = _read_store()
    servers = data.setdefault("servers", {})
    servers[_server_key(url)] = {"token": token, "principal": principal, "expires_on": expires_on}
    return _write_store(data)


def forget_login(url: str) -> bool:
    data = _read_store()
    if data.get("servers", {}).pop(_server_key(url), None) is None:
        return False
    _write_store(data)
    return True


def _write_store(data: dict[str, Any]) -> Path:
    path = _store()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(prefix=".credentials.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path
