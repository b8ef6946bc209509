"""The wire under the HTTP transport (``client.transport``): JSON calls to ``smalt server``'s REST
API over one kept-alive connection, and a refusal rebuilt as the smalt error the service raised
(``errors.from_wire``), with its hint and every problem of a spec.

Standard library only; ``smalt.errors`` is imported only when there is an error to raise.
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smalt.client.progress import Counted, Transfer

if TYPE_CHECKING:
    from smalt.errors import SmaltError


def from_environment() -> RestClient | None:
    """The client for ``SMALT_URL`` (with the default credential chain), or None in embedded mode."""
    url = os.environ.get("SMALT_URL")
    return RestClient(url) if url else None


class RestClient:
    """smalt's REST API at ``url`` (e.g. ``http://127.0.0.1:8080``), over one kept-alive connection.

    Example::

        client = RestClient("http://127.0.0.1:8080")
        client.call("GET", "/workspaces/default/jobs", max_results=10)
    """

    def __init__(self, url: str, *, token: str | None = None, credential: Any = None, timeout_s: float = 300.0) -> None:
        """``credential`` (``client.credentials``) signs each request; by default, ``token``, else
        the default chain (``AZURE_CLIENT_ID``/``_SECRET``/``_TENANT_ID``, ``SMALT_TOKEN``, the
        stored login)."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            from smalt.errors import ConfigurationError

            raise ConfigurationError(
                f"SMALT_URL {url!r} is not an http(s) address.",
                hint="e.g. http://127.0.0.1:8080, the address `smalt server` prints",
            )
        self.url = url.rstrip("/")
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self._connection = kind(parts.hostname, parts.port, timeout=timeout_s)
        self._base = parts.path.rstrip("/") + "/api/v1"
        self._headers = {"Accept": "application/json", "Content-Type": "application/json"}
        caller = _caller()
        if 0 < len(caller) <= 128 and all(c.isascii() and (c.isalnum() or c in "._@+-") for c in caller):
            self._headers["Smalt-Caller"] = caller  # a name the server cannot take is left unsaid
        from smalt.client.credentials import credential_for

        self._credential = credential_for(self.url, credential, token)

    def call(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        """``method`` on ``path`` (under ``/api/v1``) with a JSON ``body`` and the ``query``
        values that are not None; the JSON answer, or the smalt error the server raised."""
        return self._call(method, _target(path, query), body)

    def call_raw(self, method: str, path: str, body: bytes, **query: Any) -> Any:
        """As ``call``, with ``body`` sent as it is (a scoring request's bytes)."""
        import io

        headers = {**self._signed(), "Content-Length": str(len(body))}
        return self._answer(self._send(method, _target(path, query), io.BytesIO(body), headers=headers))

    def fetch(self, path: str, sink: Any, *, progress: Transfer | None = None, method: str = "GET",
              body: Any = None, **query: Any) -> dict[str, str]:  # fmt: skip
        """``method`` (with a JSON ``body``) on ``path`` and write the answer's bytes to ``sink`` in
        blocks (a download), each counted into ``progress``; the answer's headers."""
        response = self._send(method, _target(path, query), body)
        if response.status >= 400:
            raise _error(response.status, response.read(), self.url)
        while block := response.read(1 << 20):
            sink.write(block)
            if progress is not None:
                progress.add(len(block))
        return {k.lower(): v for k, v in response.getheaders()}

    def events(self, path: str) -> Iterator[dict[str, Any]]:
        """The JSON lines a streaming route answers, each as it arrives."""
        for line in self._lines(_quoted_path(path)):
            yield json.loads(line)

    def put_file(self, path: str, file: Path, *, progress: Transfer | None = None) -> None:
        """PUT the bytes of ``file`` (read in blocks, never whole) to ``path``, each block counted
        into ``progress``."""
        with file.open("rb") as handle:
            headers = {**self._signed(), "Content-Type": "application/octet-stream",
                       "Content-Length": str(file.stat().st_size)}  # fmt: skip
            body = handle if progress is None else Counted(handle, progress)
            self._answer(self._send("PUT", _quoted_path(path), body, headers=headers))

    def close(self) -> None:
        self._connection.close()

    def _signed(self) -> dict[str, str]:
        """The headers of a request, with the credential's current token."""
        if self._credential is None:
            return self._headers
        return {**self._headers, "Authorization": f"Bearer {self._credential.get_token().token}"}

    # -- HTTP --------------------------------------------------------------------------------
    def _send(
        self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None
    ) -> http.client.HTTPResponse:
        # A file is sent as it is (read in blocks); anything else as JSON.
        payload = body if body is None or hasattr(body, "read") else json.dumps(body).encode()
        try:
            self._connection.request(method, self._base + path, body=payload, headers=headers or self._signed())
            return self._connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            from smalt.errors import BackendError

            self._connection.close()
            raise BackendError(f"Cannot reach the smalt server at {self.url}: {exc}.",
                               hint="is `smalt server` running there? (SMALT_URL chooses it; unset it to "
                                    "use the local workspace)") from exc  # fmt: skip

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        return self._answer(self._send(method, path, body))

    def _answer(self, response: http.client.HTTPResponse) -> Any:
        """The JSON a response carries (None for an empty one), or the smalt error it describes."""
        data = response.read()
        if response.status >= 400:
            raise _error(response.status, data, self.url)
        return json.loads(data) if data else None

    def _lines(self, path: str) -> Iterator[bytes]:
        response = self._send("GET", path)
        if response.status >= 400:
            raise _error(response.status, response.read(), self.url)
        while line := response.readline():
            yield line


def _caller() -> str:
    """Who this client acts for: this process's user (what the server records as ``created_by``)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def _target(path: str, query: dict[str, Any]) -> str:
    """``path``, quoted segment by segment, with the ``query`` values that are set (a list repeats
    its key)."""
    given = {k: v for k, v in query.items() if v is not None and v is not False}
    return _quoted_path(path) + (f"?{urllib.parse.urlencode(given, doseq=True)}" if given else "")


def _quoted_path(path: str) -> str:
    # Each segment is quoted on its own: a name holds no slash the server could misread.
    return "/".join(_quote(part) for part in path.split("/"))


def _error(status: int, data: bytes, url: str) -> SmaltError:
    """The smalt error the server's answer describes."""
    from smalt.errors import BackendError, from_wire

    try:
        body = json.loads(data)
    except ValueError:
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        message = body.get("message") if isinstance(body, dict) else None
        if status == 401:
            from smalt.errors import AuthenticationError

            return AuthenticationError(f"The smalt server at {url} refused the request: {message or 'unauthorized'}.",
                                       hint="smalt login, or set SMALT_TOKEN")  # fmt: skip
        return BackendError(f"The smalt server at {url} answered {status}: {message or data[:200]!r}.")
    rebuilt = from_wire(body)
    return rebuilt if rebuilt is not None else BackendError(f"The smalt server at {url} answered {status}.")
