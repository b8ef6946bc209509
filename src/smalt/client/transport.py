"""The HTTP implementation of the SDK's operation groups: the same verbs as the services, over
smalt's REST API (``/api/v1/workspaces/{workspace}/...``), rebuilding entities from the JSON the
server answers with and errors from its error body (``errors.from_wire``).

``MLClient(url=...)`` gives its operation groups these in place of the services; a group not yet
served over HTTP says so when it is used (``Unavailable``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Generic, NoReturn, TypeVar

from smalt.client.rest import RestClient
from smalt.entities import Asset, CommandComponent, Entity
from smalt.entities.model import AliasMove, AssetAlias
from smalt.entities.pipeline import PipelineComponent
from smalt.errors import ConfigurationError, InvalidSpecError

A = TypeVar("A", bound=Asset)

#: The URL segment of each asset kind (``Asset.kind``).
_SEGMENTS = {"data": "data", "environment": "environments", "component": "components", "model": "models"}


# The classes have a method named `list`, which shadows the builtin inside them.
Aliases = list[AssetAlias]
Items = list
Moves = list[AliasMove]


class HttpAssets(Generic[A]):
    """The versions of one kind of asset in a workspace a server holds (``AssetService``'s verbs)."""

    def __init__(self, rest: RestClient, workspace: str, cls: type[A]) -> None:
        self._rest = rest
        self._uploads = HttpUploads(rest, workspace)
        self._cls = cls
        self.kind = cls.kind
        self._path = f"workspaces/{workspace}/{_SEGMENTS[cls.kind]}"

    def _entity(self, data: dict[str, Any]) -> A:
        pipeline = self._cls is CommandComponent and data.get("type") == "pipeline"
        cls: type[Asset] = PipelineComponent if pipeline else self._cls
        return cls.model_validate(data)  # type: ignore[return-value]

    def create_or_update(self, asset: A) -> A:
        """Register ``asset``; its local files are uploaded first (only those the server lacks),
        and a conda file is sent as its content."""
        from smalt.specs.loader import local_path_places

        data = asset.to_dict()
        for loc, container, key in local_path_places(self.kind, data):
            local = Path(container[key].removeprefix("file://").removeprefix("file:")).expanduser().resolve()
            if loc[-1] == "conda_file":
                from smalt.specs.yaml_source import read_yaml

                container[key] = _plain(read_yaml(local).data)
            else:
                container[key] = self._uploads.upload(local, field=".".join(map(str, loc)))
        return self._entity(self._rest.call("POST", f"/{self._path}", data))

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


N = TypeVar("N", bound=Entity)


class HttpNamed(Generic[N]):
    """Named resources of a workspace a server holds (computes, datastores): their services' verbs."""

    def __init__(self, rest: RestClient, workspace: str, segment: str, cls: type[N]) -> None:
        self._rest = rest
        self._cls = cls
        self._path = f"workspaces/{workspace}/{segment}"

    def create_or_update(self, item: N) -> N:
        return self._cls.model_validate(self._rest.call("POST", f"/{self._path}", item.to_dict()))

    def get(self, name: str) -> N:
        return self._cls.model_validate(self._rest.call("GET", f"/{self._path}/{name}"))

    def list(self) -> Items[N]:
        return [self._cls.model_validate(item) for item in self._rest.call("GET", f"/{self._path}")]

    def delete(self, name: str) -> None:
        self._rest.call("DELETE", f"/{self._path}/{name}")


class HttpUploads:
    """Local files to a server: only the files it lacks are sent (by sha256), then the file or
    folder is named and the server answers its datastore URI (``services.uploads``). Each file's
    digest is kept by its stamp (size, modification time) in ``~/.cache/smalt/digests.json``, so
    that sending a large folder again reads only what changed."""

    def __init__(self, rest: RestClient, workspace: str) -> None:
        self._rest = rest
        self._path = f"workspaces/{workspace}/uploads"

    def upload(self, local: Path, *, field: str = "path") -> str:
        from smalt.artifacts.content import list_files

        local = local.resolve()
        if not local.exists():
            raise InvalidSpecError.one(f"path '{local}' does not exist", field)
        files = [local] if local.is_file() else list_files(local)
        if not files:
            raise InvalidSpecError.one(f"folder '{local}' has no files to upload", field)
        digests = _digests(files)
        names = {local.name: digests[local]} if local.is_file() else {
            f.relative_to(local).as_posix(): digests[f] for f in files
        }  # fmt: skip
        missing = set(self._rest.call("POST", f"/{self._path}/missing", {"digests": sorted(set(names.values()))})
                      ["missing"])  # fmt: skip
        sent: set[str] = set()
        for file in files:
            digest = digests[file]
            if digest in missing and digest not in sent:
                self._rest.put_file(f"/{self._path}/blobs/{digest}", file)
                sent.add(digest)
        answer = self._rest.call("POST", f"/{self._path}", {"name": local.name, "files": names,
                                                           "single": local.is_file()})  # fmt: skip
        return str(answer["path"])


def _digest_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "smalt" / "digests.json"


def _digests(files: list[Path]) -> dict[Path, str]:
    """Each file's sha256, read again only where its size or modification time changed."""
    from smalt.artifacts.content import file_digest

    cache_file = _digest_cache()
    try:
        cache: dict[str, list[Any]] = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    out: dict[Path, str] = {}
    changed = False
    for file in files:
        stat = file.stat()
        stamp = [stat.st_size, stat.st_mtime_ns]
        key = str(file)  # absolute: the folder was resolved, and its files are listed under it
        known = cache.get(key)
        if isinstance(known, list) and known[:2] == stamp and len(known) == 3:
            out[file] = str(known[2])
            continue
        out[file] = file_digest(file)
        cache[key] = [*stamp, out[file]]
        changed = True
    if changed:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        staging = cache_file.with_name(f".{cache_file.name}.{os.getpid()}")
        staging.write_text(json.dumps(cache))
        staging.replace(cache_file)
    return out


def _plain(value: Any) -> Any:
    """ruamel's mappings and lists as plain JSON data."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class Unavailable:
    """An operation group, or a service one uses, that is not served over HTTP yet."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, name: str) -> Any:
        _not_yet(f"{self._what}.{name}")


def _not_yet(what: str) -> NoReturn:
    raise ConfigurationError(
        f"{what} is not served over HTTP yet.",
        hint="open the workspace in-process for it: unset SMALT_URL, or MLClient(workspace=...)",
    )
