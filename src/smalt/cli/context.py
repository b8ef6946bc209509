"""What every command shares: the workspace chosen on the command line, and the SDK it opens.

A command calls only ``client()``, an ``MLClient``: on the chosen workspace in-process, or, with
``SMALT_URL`` set, on the workspace of that server over HTTP. No command knows which it has."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smalt.client import MLClient

_state: dict[str, str | None] = {"workspace": None}
_open: list[MLClient] = []


def set_workspace(path: str | None) -> None:
    _state["workspace"] = path


def workspace() -> str | None:
    return _state["workspace"]


def client() -> MLClient:
    """The SDK this command uses (one per command, opened on first use)."""
    if _open:
        return _open[0]
    import os

    from smalt.client import MLClient

    url = os.environ.get("SMALT_URL")
    # Through a server, --workspace names one of its workspaces (by default the one it started on).
    named = _state["workspace"]
    opened = MLClient(url=url, workspace_name=named) if url else MLClient(workspace=named)
    _open.append(opened)
    return opened


def close() -> None:
    """Close the client the command opened (its database connections with it)."""
    while _open:
        _open.pop().close()
