"""What every command shares: the workspace chosen on the command line, and opening the SDK (or,
with ``SMALT_URL`` set, the REST client of that server)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smalt.client import MLClient
    from smalt.client.rest import RestClient

_state: dict[str, str | None] = {"workspace": None}
_open: list[MLClient | RestClient] = []


def set_workspace(path: str | None) -> None:
    _state["workspace"] = path


def workspace() -> str | None:
    return _state["workspace"]


def client() -> MLClient:
    """The SDK: on the chosen workspace in-process, or with ``SMALT_URL`` set on the server's, over
    HTTP. There, a command whose operations are not served over HTTP yet is refused when it calls
    them, rather than quietly using a local workspace."""
    import os

    from smalt.client import MLClient

    url = os.environ.get("SMALT_URL")
    client = MLClient(url=url) if url else MLClient(workspace=_state["workspace"])
    _open.append(client)
    return client


def remote() -> RestClient | None:
    """The smalt server that ``SMALT_URL`` names, or None: the workspace is opened in-process."""
    from smalt.client.rest import RestClient, from_environment

    for opened in _open:
        if isinstance(opened, RestClient):
            return opened  # one connection, kept alive, for everything the command asks
    found = from_environment()
    if found is not None:
        _open.append(found)
    return found


def close() -> None:
    """Close every client the command opened (its database connections with it)."""
    while _open:
        _open.pop().close()
