"""The HTTP implementation of the SDK's operation groups: the same verbs as the services, over
smalt's REST API (``/api/v1/workspaces/{workspace}/...``), rebuilding entities from the JSON the
server answers with and errors from its error body (``errors.from_wire``).

``MLClient(url=...)`` gives its operation groups these in place of the services; a group not yet
served over HTTP says so when it is used (``Unavailable``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Generic, NoReturn, TypeVar

from smalt.client.rest import RestClient
from smalt.entities import Asset, CommandComponent
from smalt.entities.model import AliasMove, AssetAlias
from smalt.entities.pipeline import PipelineComponent
from smalt.errors import ConfigurationError

A = TypeVar("A", bound=Asset)

#: The URL segment of each asset kind (``Asset.kind``).
_SEGMENTS = {"data": "data", "environment": "environments", "component": "components", "model": "models"}


# The classes have a method named `list`, which shadows the builtin inside them.
Aliases = list[AssetAlias]
Moves = list[AliasMove]


class HttpAssets(Generic[A]):
    """The versions of one kind of asset in a workspace a server holds (``AssetService``'s verbs)."""

    def __init__(self, rest: RestClient, workspace: str, cls: type[A]) -> None:
        self._rest = rest
        self._cls = cls
        self.kind = cls.kind
        self._path = f"workspaces/{workspace}/{_SEGMENTS[cls.kind]}"

    def _entity(self, data: dict[str, Any]) -> A:
        pipeline = self._cls is CommandComponent and data.get("type") == "pipeline"
        cls: type[Asset] = PipelineComponent if pipeline else self._cls
        return cls.model_validate(data)  # type: ignore[return-value]

    def create_or_update(self, asset: A) -> A:
        return self._entity(self._rest.call("POST", f"/{self._path}", asset.to_dict()))

    def get(self, name: str, version: str | None = None, label: str | None = None) -> A:
        return self._entity(self._rest.call("GET", f"/{self._path}/{name}", version=version, label=label))

    def list(self, name: str | None = None, *, include_archived: bool = False) -> list[A]:
        found = self._rest.call("GET", f"/{self._path}", name=name, include_archived=include_archived)
        return [self._entity(item) for item in found]

    def archive(self, name: str, version: str | None = None, label: str | None = None) -> None:
        self._rest.call("POST", f"/{self._path}/{name}/archive", version=version, label=label)

    def restore(self, name: str, version: str | None = None, label: str | None = None) -> None:
        self._rest.call("POST", f"/{self._path}/{name}/restore", version=version, label=label)

    def download(self, name: str, version: str | None, label: str | None, download_path: str | Path) -> Path:
        _not_yet(f"{self.kind} download")

    def set_alias(self, name: str, alias: str, version: str | None = None, label: str | None = None) -> AssetAlias:
        _not_yet("model aliases")

    def remove_alias(self, name: str, alias: str) -> None:
        _not_yet("model aliases")

    def aliases(self, name: str) -> Aliases:
        _not_yet("model aliases")

    def alias_history(self, name: str) -> Moves:
        _not_yet("model aliases")


class Unavailable:
    """An operation group, or a service one uses, that is not served over HTTP yet."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, name: str) -> Any:
        _not_yet(f"{self._what}.{name}")


def _not_yet(what: str) -> NoReturn:
    raise ConfigurationError(
        f"{what} is not served over HTTP yet.",
        hint="open the workspace in-process (MLClient(workspace=...)) for it",
    )
