"""The HTTP transport: a workspace served by ``smalt server``, reached at ``SMALT_URL``.

Jobs travel as the JSON the server answers with (what ``job.to_dict()`` gives in-process), and a
refusal comes back as the same smalt error the service raised, with its hint and every problem of
a spec, so a command prints the same thing in either mode.

This module uses the standard library only: a ``smalt job`` command against a server imports it
and nothing heavier (no store, entities or services), which is what makes it fast. Even
``smalt.errors`` is imported only when there is an error to raise (its dataclass costs a command
about 10 ms of imports).
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smalt.errors import SmaltError

#: A job as the server describes it: ``name``, ``status``, ``inputs``, ``outputs``, ``error``...
JobData = dict[str, Any]


def from_environment() -> RestClient | None:
    """The client for ``SMALT_URL`` (with ``SMALT_TOKEN``), or None in embedded mode."""
    url = os.environ.get("SMALT_URL")
    return RestClient(url, token=os.environ.get("SMALT_TOKEN")) if url else None


class RestClient:
    """smalt's REST API at ``url`` (e.g. ``http://127.0.0.1:8080``), over one kept-alive connection.

    Example::

        client = RestClient("http://127.0.0.1:8080")
        job = client.create_job(Path("job.yml").resolve())
        client.stream_job(job["name"], out=sys.stdout)
    """

    def __init__(self, url: str, *, token: str | None = None, timeout_s: float = 300.0) -> None:
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
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    # -- jobs --------------------------------------------------------------------------------
    def create_job(self, file: Path, *, name: str | None = None, overrides: list[str] | None = None) -> JobData:
        """Submit the job in ``file``, sent with every local file it names (client.bundle)."""
        data: JobData = self._submit("/jobs", file, name, overrides)
        return data

    def validate_job(self, file: Path, *, overrides: list[str] | None = None) -> list[str]:
        """Check the job in ``file`` as submitting would; a pipeline's step names."""
        answer = self._submit("/jobs/validate", file, None, overrides)
        return list(answer["steps"])

    def _submit(self, path: str, file: Path, name: str | None, overrides: list[str] | None) -> Any:
        from smalt.client.bundle import pack

        if not file.is_file():
            from smalt.errors import InvalidSpecError

            raise InvalidSpecError.one(f"No job file at {file}.", "file")
        archive, inside, origin = pack(file)
        query: list[tuple[str, str]] = [("file", inside), ("origin", origin)]
        query += [("name", name)] if name else []
        query += [("set", item) for item in overrides or []]
        with archive:
            size = archive.seek(0, os.SEEK_END)
            archive.seek(0)
            headers = {**self._headers, "Content-Type": "application/x-tar", "Content-Length": str(size)}
            response = self._send("POST", f"{path}?{urllib.parse.urlencode(query)}", archive, headers=headers)
            answer = self._answer(response)
        said = response.getheader("Smalt-Warnings")
        if said:
            import warnings

            from smalt.errors import SpecWarning

            for line in json.loads(said):  # what the server's reading of the file warned of
                warnings.warn(SpecWarning(str(line)), stacklevel=3)
        return answer

    def get_job(self, name: str) -> JobData:
        data: JobData = self._call("GET", f"/jobs/{_quote(name)}")
        return data

    def list_jobs(self, **filters: Any) -> list[JobData]:
        """Jobs, filtered as ``JobOperations.list`` filters them (None values are left out)."""
        query = urllib.parse.urlencode({k: v for k, v in filters.items() if v is not None and v is not False})
        found: list[JobData] = self._call("GET", "/jobs" + (f"?{query}" if query else ""))
        return found

    def job_metrics(self, name: str, key: str | None = None) -> dict[str, list[dict[str, Any]]]:
        query = f"?{urllib.parse.urlencode({'key': key})}" if key else ""
        history: dict[str, list[dict[str, Any]]] = self._call("GET", f"/jobs/{_quote(name)}/metrics{query}")
        return history

    def stream_job(self, name: str, *, out: Any) -> JobData:
        """Write the job's log to ``out`` as it is written; returns the finished job."""
        finished: JobData | None = None
        for line in self._lines(f"/jobs/{_quote(name)}/stream"):
            event = json.loads(line)
            if "log" in event:
                out.write(event["log"])
                out.flush()
            elif "job" in event:
                finished = event["job"]
        return finished if finished is not None else self.get_job(name)  # the stream was cut short

    def cancel_job(self, name: str) -> JobData:
        data: JobData = self._call("POST", f"/jobs/{_quote(name)}/cancel")
        return data

    def archive_job(self, name: str) -> None:
        self._call("POST", f"/jobs/{_quote(name)}/archive")

    def rerun_job(self, name: str) -> JobData:
        data: JobData = self._call("POST", f"/jobs/{_quote(name)}/rerun")
        return data

    def call(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        """``method`` on ``path`` (under ``/api/v1``) with a JSON ``body`` and the ``query``
        values that are not None; the JSON answer, or the smalt error the server raised."""
        return self._call(method, _target(path, query), body)

    def call_raw(self, method: str, path: str, body: bytes, **query: Any) -> Any:
        """As ``call``, with ``body`` sent as it is (a scoring request's bytes)."""
        import io

        headers = {**self._headers, "Content-Length": str(len(body))}
        return self._answer(self._send(method, _target(path, query), io.BytesIO(body), headers=headers))

    def fetch(self, path: str, sink: Any, **query: Any) -> dict[str, str]:
        """GET ``path`` and write the answer's bytes to ``sink`` in blocks (a download); the
        answer's headers."""
        response = self._send("GET", _target(path, query))
        if response.status >= 400:
            raise _error(response.status, response.read(), self.url)
        while block := response.read(1 << 20):
            sink.write(block)
        return {k.lower(): v for k, v in response.getheaders()}

    def events(self, path: str) -> Iterator[dict[str, Any]]:
        """The JSON lines a streaming route answers, each as it arrives."""
        for line in self._lines(_quoted_path(path)):
            yield json.loads(line)

    def put_file(self, path: str, file: Path) -> None:
        """PUT the bytes of ``file`` (read in blocks, never whole) to ``path``."""
        with file.open("rb") as handle:
            headers = {**self._headers, "Content-Type": "application/octet-stream",
                       "Content-Length": str(file.stat().st_size)}  # fmt: skip
            self._answer(self._send("PUT", _quoted_path(path), handle, headers=headers))

    def close(self) -> None:
        self._connection.close()

    # -- HTTP --------------------------------------------------------------------------------
    def _send(
        self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None
    ) -> http.client.HTTPResponse:
        # A submission's archive is sent as it is (a file: read in blocks); anything else as JSON.
        payload = body if body is None or hasattr(body, "read") else json.dumps(body).encode()
        try:
            self._connection.request(method, self._base + path, body=payload, headers=headers or self._headers)
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
    from smalt.errors import BackendError, ConfigurationError, from_wire

    try:
        body = json.loads(data)
    except ValueError:
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        message = body.get("message") if isinstance(body, dict) else None
        if status == 401:
            return ConfigurationError(f"The smalt server at {url} refused the request: {message or 'unauthorized'}.",
                                      hint="set SMALT_TOKEN to the token the server was started with")  # fmt: skip
        return BackendError(f"The smalt server at {url} answered {status}: {message or data[:200]!r}.")
    rebuilt = from_wire(body)
    return rebuilt if rebuilt is not None else BackendError(f"The smalt server at {url} answered {status}.")
