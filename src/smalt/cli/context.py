"""What every command shares: the workspace chosen on the command line, and opening the SDK."""

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
    from smalt.client import MLClient

    client = MLClient(workspace=_state["workspace"])
    _open.append(client)
    return client


def close() -> None:
    """Close every client the command opened (its database connections with it)."""
    while _open:
        _open.pop().close()
