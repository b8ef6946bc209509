"""The HTTP implementation of the SDK's operation groups: the same verbs as the services, over
smalt's REST API (``/api/v1/workspaces/{workspace}/...``), rebuilding entities from the JSON the
server answers with and errors from its error body (``errors.from_wire``).

``MLClient(url=...)`` gives its operation groups these in place of the services.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from smalt.client.progress import Transfer
from smalt.client.rest import RestClient
from smalt.entities import (
    Asset,
    CommandComponent,
    CommandJob,
    EndpointAuthKeys,
    EndpointAuthToken,
    Entity,
    LineageGraph,
    ModelComparison,
    OnlineDeployment,
    OnlineEndpoint,
    PipelineJob,
    Workspace,
)
from smalt.entities.base import Located
from smalt.entities.connection import WorkspaceConnection
from smalt.entities.datastore import Datastore, shown_datastore
from smalt.entities.model import AliasMove, AssetAlias
from smalt.entities.pipeline import PipelineComponent
from smalt.errors import InvalidSpecError, NotFoundError

A = TypeVar("A", bound=Asset)
AnyJob = CommandJob | PipelineJob

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
        with _located(asset):
            data = _sent(self.kind, asset.to_dict(), self._uploads)
            return self._entity(self._rest.call("POST", f"/{self._path}", data))

    def get(self, name: str, version: str | None = None, label: str | None = None) -> A:
        return self._entity(self._rest.call("GET", f"/{self._path}/{name}", version=version, label=label))

    def list(self, name: str | None = None, *, include_archived: bool = False,
             max_results: int | None = None) -> list[A]:  # fmt: skip
        found = self._rest.call("GET", f"/{self._path}", name=name, include_archived=include_archived,
                                max_results=max_results)  # fmt: skip
        return [self._entity(item) for item in found]

    def archive(self, name: str, version: str | None = None, label: str | None = None) -> None:
        self._rest.call("POST", f"/{self._path}/{name}/archive", version=version, label=label)

    def restore(self, name: str, version: str | None = None, label: str | None = None) -> None:
        self._rest.call("POST", f"/{self._path}/{name}/restore", version=version, label=label)

    def download(self, name: str, version: str | None, label: str | None, download_path: str | Path) -> Path:
        """The version's files in ``download_path/<name>/``, as a local download lays them out."""
        made = _extract(self._rest, f"/{self._path}/{name}/download", Path(download_path),
                        version=version, label=label)  # fmt: skip
        return Path(download_path) / made[0]

    def set_alias(self, name: str, alias: str, version: str | None = None, label: str | None = None) -> AssetAlias:
        answer = self._rest.call("PUT", f"/{self._path}/{name}/aliases/{alias}", version=version, label=label)
        return AssetAlias.model_validate(answer)

    def remove_alias(self, name: str, alias: str) -> None:
        self._rest.call("DELETE", f"/{self._path}/{name}/aliases/{alias}")

    def aliases(self, name: str) -> Aliases:
        return [AssetAlias.model_validate(a) for a in self._rest.call("GET", f"/{self._path}/{name}/aliases")]

    def alias_history(self, name: str) -> Moves:
        return [AliasMove.model_validate(m) for m in self._rest.call("GET", f"/{self._path}/{name}/alias-history")]


N = TypeVar("N", bound=Entity)


class HttpNamed(Generic[N]):
    """Named resources of a workspace a server holds (computes, datastores): their services' verbs."""

    def __init__(self, rest: RestClient, workspace: str, segment: str, cls: type[N]) -> None:
        self._rest = rest
        self._cls = cls
        self._path = f"workspaces/{workspace}/{segment}"

    def _entity(self, data: dict[str, Any]) -> N:
        if self._cls is Datastore:  # as the server shows it: its secrets are left out on purpose
            return shown_datastore(data)  # type: ignore[return-value]
        return self._cls.model_validate(data)

    def create_or_update(self, item: N) -> N:
        return self._entity(self._rest.call("POST", f"/{self._path}", item.to_dict()))

    def get(self, name: str) -> N:
        return self._entity(self._rest.call("GET", f"/{self._path}/{name}"))

    def list(self) -> Items[N]:
        return [self._entity(item) for item in self._rest.call("GET", f"/{self._path}")]

    def delete(self, name: str) -> None:
        self._rest.call("DELETE", f"/{self._path}/{name}")


class HttpConnections(HttpNamed[WorkspaceConnection]):
    """Connections of a workspace a server holds; their secrets only through ``list_secrets``."""

    def __init__(self, rest: RestClient, workspace: str) -> None:
        super().__init__(rest, workspace, "connections", WorkspaceConnection)

    def list_secrets(self, name: str) -> dict[str, str]:
        found: dict[str, str] = self._rest.call("POST", f"/{self._path}/{name}/listsecrets")
        return found


class HttpWorkspaces:
    """The workspaces a server holds (``WorkspaceService``'s verbs)."""

    def __init__(self, rest: RestClient) -> None:
        self._rest = rest

    def get(self, name: str) -> Workspace:
        return Workspace.model_validate(self._rest.call("GET", f"/workspaces/{name}"))

    def list(self) -> Items[Workspace]:
        return [Workspace.model_validate(w) for w in self._rest.call("GET", "/workspaces")]

    def create(self, name: str) -> Workspace:
        return Workspace.model_validate(self._rest.call("POST", "/workspaces", {"name": name}))

    def delete(self, name: str) -> None:
        self._rest.call("DELETE", f"/workspaces/{name}")

    def sync_keys(self, name: str) -> dict[str, int]:
        counts: dict[str, int] = self._rest.call("POST", f"/workspaces/{name}/sync-keys")
        return counts


class HttpEndpoints:
    """Online endpoints and deployments of a workspace a server holds: ``EndpointService``'s verbs."""

    def __init__(self, rest: RestClient, workspace: str) -> None:
        self._rest = rest
        self._uploads = HttpUploads(rest, workspace)
        self._path = f"workspaces/{workspace}/online-endpoints"

    def create_or_update(self, endpoint: OnlineEndpoint) -> OnlineEndpoint:
        return OnlineEndpoint.model_validate(self._rest.call("POST", f"/{self._path}", endpoint.to_dict()))

    def get(self, name: str) -> OnlineEndpoint:
        return OnlineEndpoint.model_validate(self._rest.call("GET", f"/{self._path}/{name}"))

    def list(self) -> Items[OnlineEndpoint]:
        return [OnlineEndpoint.model_validate(e) for e in self._rest.call("GET", f"/{self._path}")]

    def delete(self, name: str) -> None:
        self._rest.call("DELETE", f"/{self._path}/{name}")

    def get_keys(self, name: str) -> EndpointAuthKeys | EndpointAuthToken:
        answer = self._rest.call("POST", f"/{self._path}/{name}/keys")
        if "keys" in answer:
            return EndpointAuthKeys.model_validate(answer["keys"])
        return EndpointAuthToken.model_validate(answer["token"])

    def regenerate_keys(self, name: str, key_type: str) -> None:
        self._rest.call("POST", f"/{self._path}/{name}/regenerate-keys", key_type=key_type)

    def invoke(self, name: str, body: bytes, deployment: str | None = None) -> tuple[int, bytes]:
        answer = self._rest.call_raw("POST", f"/{self._path}/{name}/score", body, deployment=deployment)
        return int(answer["status"]), str(answer["body"]).encode()

    def start(self, name: str) -> OnlineEndpoint:
        return OnlineEndpoint.model_validate(self._rest.call("POST", f"/{self._path}/{name}/start"))

    def stop(self, name: str) -> OnlineEndpoint:
        return OnlineEndpoint.model_validate(self._rest.call("POST", f"/{self._path}/{name}/stop"))

    def start_all(self) -> Items[OnlineEndpoint]:
        return [OnlineEndpoint.model_validate(e) for e in self._rest.call("POST", f"/{self._path}/start-all")]

    def create_or_update_deployment(self, deployment: OnlineDeployment, *, all_traffic: bool = False
                                    ) -> OnlineDeployment:  # fmt: skip
        """Start the deployment on the server; its local files (code, model, conda file) are
        uploaded first, as an asset's are."""
        data = _sent("online-deployment", deployment.to_dict(), self._uploads)
        answer = self._rest.call("POST", f"/{self._path}/{deployment.endpoint_name}/deployments", data,
                                 all_traffic=all_traffic)  # fmt: skip
        return OnlineDeployment.model_validate(answer)

    def get_deployment(self, endpoint: str, name: str) -> OnlineDeployment:
        return OnlineDeployment.model_validate(self._rest.call("GET", f"/{self._path}/{endpoint}/deployments/{name}"))

    def list_deployments(self, endpoint: str) -> Items[OnlineDeployment]:
        found = self._rest.call("GET", f"/{self._path}/{endpoint}/deployments")
        return [OnlineDeployment.model_validate(d) for d in found]

    def delete_deployment(self, endpoint: str, name: str) -> None:
        self._rest.call("DELETE", f"/{self._path}/{endpoint}/deployments/{name}")

    def get_logs(self, endpoint: str, name: str, lines: int | None = None) -> str:
        answer = self._rest.call("GET", f"/{self._path}/{endpoint}/deployments/{name}/logs", lines=lines)
        return str(answer["logs"])


@dataclass(frozen=True)
class MetricPoint:
    """One logged value, as the server sends it."""

    step: int
    value: float
    timestamp: int


class HttpJobs:
    """Jobs of a workspace a server holds: ``JobService``'s verbs. A job goes as its entity's JSON,
    its local code and inputs uploaded first (only what the server lacks)."""

    def __init__(self, rest: RestClient, workspace: str) -> None:
        self._rest = rest
        self._uploads = HttpUploads(rest, workspace)
        self._path = f"workspaces/{workspace}/jobs"

    @staticmethod
    def _job(data: dict[str, Any]) -> AnyJob:
        return PipelineJob.model_validate(data) if data.get("type") == "pipeline" else CommandJob.model_validate(data)

    def create_or_update(self, job: AnyJob) -> AnyJob:
        from smalt.specs import prepare

        with _located(job):
            data = _sent("job", prepare(job).to_dict(), self._uploads)
            return self._job(self._rest.call("POST", f"/{self._path}", data))

    def validate(self, job: AnyJob) -> Items[str]:
        from smalt.specs import prepare

        with _located(job):
            data = _sent("job", prepare(job).to_dict(), self._uploads)
            return [str(step) for step in self._rest.call("POST", f"/{self._path}/validate", data)["steps"]]

    def get(self, name: str) -> AnyJob:
        return self._job(self._rest.call("GET", f"/{self._path}/{name}"))

    def list(self, *, status: str | None = None, experiment_name: str | None = None,
             include_archived: bool = False, max_results: int | None = None,
             order_by: str | None = None, parent_job_name: str | None = None) -> Items[AnyJob]:  # fmt: skip
        found = self._rest.call("GET", f"/{self._path}", status=status, experiment_name=experiment_name,
                                include_archived=include_archived, max_results=max_results, order_by=order_by,
                                parent_job_name=parent_job_name)  # fmt: skip
        return [self._job(item) for item in found]

    def metric_history(self, name: str, key: str | None = None) -> dict[str, Items[MetricPoint]]:
        history = self._rest.call("GET", f"/{self._path}/{name}/metrics", key=key)
        return {k: [MetricPoint(int(p["step"]), float(p["value"]), int(p["timestamp"])) for p in points]
                for k, points in history.items()}  # fmt: skip

    def stream(self, name: str) -> Iterator[str]:
        for event in self._rest.events(f"/{self._path}/{name}/stream"):
            if "log" in event:
                yield str(event["log"])

    def cancel(self, name: str) -> AnyJob:
        return self._job(self._rest.call("POST", f"/{self._path}/{name}/cancel"))

    def archive(self, name: str) -> None:
        self._rest.call("POST", f"/{self._path}/{name}/archive")

    def rerun(self, name: str) -> AnyJob:
        return self._job(self._rest.call("POST", f"/{self._path}/{name}/rerun"))

    def download(self, name: str, download_path: str | Path, output_name: str | None, all: bool) -> Items[Path]:
        """Named outputs to ``<path>/named-outputs/<output>/`` (and with ``all`` the artifacts),
        as a local download lays them out."""
        target = Path(download_path)
        made = _extract(self._rest, f"/{self._path}/{name}/download", target, output_name=output_name, all=all)
        return [target / p for p in made]


@contextlib.contextmanager
def _located(entity: Located) -> Iterator[None]:
    """A refusal of ``entity`` (the server's, or its upload's), each problem at the file and line
    of its field, as the service in-process says it: the server had the entity, not its file."""
    try:
        yield
    except InvalidSpecError as error:
        raise InvalidSpecError(entity.locate(error.problems), summary=error.summary, hint=error.hint) from None
    except NotFoundError as error:
        raise entity.locate_error(error) from None


class HttpLineage:
    """Lineage of a workspace a server holds: ``LineageService``'s verbs."""

    def __init__(self, rest: RestClient, workspace: str) -> None:
        self._rest = rest
        self._path = f"workspaces/{workspace}"

    def job_lineage(self, name: str) -> LineageGraph:
        return LineageGraph.model_validate(self._rest.call("GET", f"/{self._path}/jobs/{name}/lineage"))

    def model_lineage(self, name: str, version: str | None = None, label: str | None = None) -> LineageGraph:
        answer = self._rest.call("GET", f"/{self._path}/models/{name}/lineage", version=version, label=label)
        return LineageGraph.model_validate(answer)

    def data_impact(self, name: str, version: str | None = None, label: str | None = None) -> LineageGraph:
        answer = self._rest.call("GET", f"/{self._path}/data/{name}/impact", version=version, label=label)
        return LineageGraph.model_validate(answer)

    def compare(self, name: str, versions: Items[str]) -> ModelComparison:
        answer = self._rest.call("GET", f"/{self._path}/models/{name}/compare", versions=list(versions))
        return ModelComparison.model_validate(answer)


def _extract(rest: RestClient, path: str, destination: Path, *, method: str = "GET", body: Any = None,
             **query: Any) -> Items[Path]:  # fmt: skip
    """Download the tar a route answers into ``destination`` (nothing may land outside it); the
    paths the download made there, relative to ``destination``, as the server names them."""
    import tarfile
    import tempfile

    from smalt.specs.references import confined_path

    with tempfile.TemporaryFile() as archive, Transfer("Downloading", path.rstrip("/").split("/")[-2]) as progress:
        headers = rest.fetch(path, archive, progress=progress, method=method, body=body, **query)
        destination.mkdir(parents=True, exist_ok=True)  # only now: a refusal leaves no folder behind
        archive.seek(0)
        with tarfile.open(fileobj=archive, mode="r") as tar:
            tar.extractall(destination, filter="data")
    return [Path(confined_path(p)) for p in json.loads(headers.get("smalt-paths", "[]"))]


def _sent(kind: str, data: dict[str, Any], uploads: HttpUploads) -> dict[str, Any]:
    """``data`` (an entity of ``kind`` as JSON) as it goes to a server: each local file or folder
    uploaded and named by its URI, a conda file sent as its content."""
    from smalt.specs.loader import local_path_places

    # A data or model asset's local files go to the datastore it names, as they do in-process.
    datastore = data.get("datastore") if kind in ("data", "model") else None
    sent: dict[tuple[Path, str | None], str] = {}  # a folder that many steps name is sent once
    for loc, container, key in local_path_places(kind, data):
        local = Path(container[key].removeprefix("file://").removeprefix("file:")).expanduser().resolve()
        if loc[-1] == "conda_file":
            from smalt.specs.yaml_source import plain, read_yaml

            container[key] = plain(read_yaml(local).data)
        else:
            if kind == "data" and loc == ("path",):
                from smalt.specs.references import check_local_data

                check_local_data(str(data.get("type")), local)
            field = ".".join(map(str, loc))
            into = datastore if loc == ("path",) else None
            if (local, into) not in sent:
                sent[local, into] = uploads.upload(local, field=field, datastore=into)
            container[key] = sent[local, into]
    return data


class HttpUploads:
    """Local files to a server: only the files it lacks are sent (by sha256), then the file or
    folder is named and the server answers its datastore URI (``services.uploads``). Each file's
    digest is kept by its stamp (size, modification time) in ``~/.cache/smalt/digests.json``, so
    that sending a large folder again reads only what changed."""

    def __init__(self, rest: RestClient, workspace: str) -> None:
        self._rest = rest
        self._path = f"workspaces/{workspace}/uploads"

    def upload(self, local: Path, *, field: str = "path", datastore: str | None = None) -> str:
        """The datastore URI of the file or folder ``local`` once the server has it, in
        ``datastore`` (``workspaceblobstore`` unless named)."""
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
        sizes = {digests[f]: f.stat().st_size for f in files if digests[f] in missing}
        with Transfer("Uploading", local.name, sum(sizes.values())) as progress:
            for file in files:
                digest = digests[file]
                if digest in missing and digest not in sent:
                    self._rest.put_file(f"/{self._path}/blobs/{digest}", file, progress=progress)
                    sent.add(digest)
        answer = self._rest.call("POST", f"/{self._path}", {
            "name": local.name, "files": names, "single": local.is_file(),
            "datastore": datastore.removeprefix("azureml:") if datastore else None,
        })  # fmt: skip
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


class HttpPackaging:
    """Model packages made by a server (``PackagingService``'s verb): the deployment file is read
    here, its code and conda file uploaded, and the build context comes back as a tar."""

    def __init__(self, rest: RestClient, workspace: str) -> None:
        self._rest = rest
        self._uploads = HttpUploads(rest, workspace)
        self._path = f"workspaces/{workspace}/models"

    def package(self, name: str, version: str | None = None, label: str | None = None, *,
                deployment_file: str | Path | None = None, output: str | Path) -> Path:  # fmt: skip
        import secrets
        import shutil

        from smalt.specs import prepare
        from smalt.specs.loader import load_package_deployment
        from smalt.specs.references import refuse_occupied

        target = Path(output).absolute()
        refuse_occupied(target)
        sent: dict[str, Any] | None = None
        if deployment_file is not None:
            deployment = load_package_deployment(Path(deployment_file))
            with _located(deployment):
                sent = _sent("online-deployment", prepare(deployment).to_dict(), self._uploads)
        incoming = target.parent / f".{target.name}.incoming-{secrets.token_hex(4)}"  # made once it arrives
        try:
            (made,) = _extract(self._rest, f"/{self._path}/{name}/package", incoming, method="POST",
                               body={"deployment": sent}, version=version, label=label)  # fmt: skip
            if target.exists():
                target.rmdir()  # empty, as checked above
            (incoming / made).replace(target)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        return target
