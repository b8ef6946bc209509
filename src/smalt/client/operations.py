"""Operation groups of ``MLClient``: the verbs of Azure ML's SDK v2, one class per resource."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TextIO, TypeVar

from smalt.entities import (
    Asset,
    Compute,
    Data,
    Datastore,
    EndpointAuthKeys,
    EndpointAuthToken,
    LineageGraph,
    Model,
    ModelComparison,
    OnlineDeployment,
    OnlineEndpoint,
    Workspace,
)
from smalt.entities.connection import WorkspaceConnection
from smalt.entities.model import AliasMove, AssetAlias
from smalt.errors import InvalidSpecError, InvalidStateError, UserCodeError

if TYPE_CHECKING:
    from smalt.services.jobs import AnyJob, JobList, PathList
    from smalt.services.packaging import PackagingService

A = TypeVar("A", bound=Asset)
N = TypeVar("N")
T = TypeVar("T")

#: Each metric's history, as plain points.
MetricPoints = dict[str, list[dict[str, Any]]]


class Poller(Generic[T]):
    """What Azure ML's ``begin_*`` methods return; here the work is done when it comes back."""

    def __init__(self, value: T) -> None:
        self._value = value

    def result(self, timeout: float | None = None) -> T:
        return self._value

    def done(self) -> bool:
        return True

    def wait(self, timeout: float | None = None) -> None:
        return None


def _include_archived(include_archived: bool, list_view_type: str | None) -> bool:
    # Azure ML spells it list_view_type=ListViewType.ALL / "All"; smalt also takes a flag.
    return include_archived or (list_view_type or "").lower().replace("_", "") in ("all", "archivedonly")


# The classes have a method named `list`, which shadows the builtin inside them.
Aliases = list[AssetAlias]
Items = list
Moves = list[AliasMove]


class LineageBackend(Protocol):
    """What the groups' lineage verbs call: ``LineageService`` in-process, ``HttpLineage`` over HTTP."""

    def job_lineage(self, name: str, /) -> LineageGraph: ...
    def model_lineage(self, name: str, version: str | None = None, label: str | None = None, /) -> LineageGraph: ...
    def data_impact(self, name: str, version: str | None = None, label: str | None = None, /) -> LineageGraph: ...
    def compare(self, name: str, versions: Items[str], /) -> ModelComparison: ...


class AssetBackend(Protocol[A]):
    """What an asset operation group calls: ``AssetService`` in-process, ``HttpAssets`` over HTTP."""

    kind: str

    def create_or_update(self, asset: A) -> A: ...
    def get(self, name: str, version: str | None = None, label: str | None = None) -> A: ...
    def list(self, name: str | None = None, *, include_archived: bool = False,
             max_results: int | None = None) -> list[A]: ...  # fmt: skip
    def archive(self, name: str, version: str | None = None, label: str | None = None) -> None: ...
    def restore(self, name: str, version: str | None = None, label: str | None = None) -> None: ...
    def download(self, name: str, version: str | None, label: str | None, download_path: str | Path) -> Path: ...
    def set_alias(
        self, name: str, alias: str, version: str | None = None, label: str | None = None
    ) -> AssetAlias: ...
    def remove_alias(self, name: str, alias: str) -> None: ...
    def aliases(self, name: str) -> Aliases: ...
    def alias_history(self, name: str) -> Moves: ...


class AssetOperations(Generic[A]):
    """``ml_client.data`` / ``.environments`` / ``.components`` / ``.models``.

    Example::

        ml_client.data.create_or_update(Data(name="iris", path="./iris.csv", type="uri_file"))
        ml_client.data.get("iris", label="latest")
    """

    def __init__(self, service: AssetBackend[A]) -> None:
        self._service = service

    def create_or_update(self, asset: A) -> A:
        """Register ``asset``; with no version it gets the next integer version."""
        return self._service.create_or_update(asset)

    def get(self, name: str, version: str | int | None = None, label: str | None = None) -> A:
        """One version, by ``version`` or by ``label="latest"``."""
        return self._service.get(name, None if version is None else str(version), label)

    def list(
        self, name: str | None = None, *, include_archived: bool = False, list_view_type: str | None = None,
        max_results: int | None = None,
    ) -> list[A]:  # fmt: skip
        """The latest version of each asset, or every version of ``name``, newest first; the first
        ``max_results`` of them."""
        archived = _include_archived(include_archived, list_view_type)
        return self._service.list(name, include_archived=archived, max_results=max_results)

    def archive(self, name: str, version: str | int | None = None, label: str | None = None) -> None:
        """Archive one version, or with no version every version of ``name``."""
        self._service.archive(name, None if version is None else str(version), label)

    def restore(self, name: str, version: str | int | None = None, label: str | None = None) -> None:
        self._service.restore(name, None if version is None else str(version), label)

    def download(
        self, name: str, version: str | int | None = None, download_path: str | Path = ".", label: str | None = None
    ) -> Path:
        """Copy the files to ``download_path/<name>/<file or folder name>``."""
        return self._service.download(name, None if version is None else str(version), label, download_path)


class ModelOperations(AssetOperations[Model]):
    """``ml_client.models``: Azure ML's verbs, and aliases, lineage and comparison.

    Example::

        ml_client.models.set_alias("credit", "production", version=3)
        graph = ml_client.models.lineage("credit", version=3)
        [n.name for n in graph.of_kind("data")]
    """

    def __init__(self, service: AssetBackend[Model], lineage: LineageBackend, packaging: PackagingService) -> None:
        super().__init__(service)
        self._lineage = lineage
        self._packaging = packaging

    def set_alias(
        self, name: str, alias: str, version: str | int | None = None, label: str | None = None
    ) -> AssetAlias:
        """Point ``alias`` at a version; ``azureml:<name>@<alias>`` then names it."""
        return self._service.set_alias(name, alias, None if version is None else str(version), label)

    def remove_alias(self, name: str, alias: str) -> None:
        self._service.remove_alias(name, alias)

    def aliases(self, name: str) -> Aliases:
        return self._service.aliases(name)

    def alias_history(self, name: str) -> Moves:
        """Every set, move and removal of the model's aliases, with who and when."""
        return self._service.alias_history(name)

    def lineage(self, name: str, version: str | int | None = None, label: str | None = None) -> LineageGraph:
        """The graph upstream of a version: the jobs that made it, their code, environment and data."""
        return self._lineage.model_lineage(name, None if version is None else str(version), label)

    def compare(self, name: str, versions: list[str | int]) -> ModelComparison:
        """What differs between versions: params, inputs, metrics, data versions, packages, code files."""
        return self._lineage.compare(name, [str(v) for v in versions])

    def package_context(
        self, name: str, version: str | int | None = None, label: str | None = None, *,
        deployment_file: str | Path | None = None, output: str | Path,
    ) -> Path:  # fmt: skip
        """Write a Docker build context that serves a version (``smalt model package``): the
        model, the scoring code and environment of ``deployment_file`` (an online deployment YAML;
        none for an MLflow model), pinned requirements and smalt's scoring server as entry point.
        ``output`` must be new or empty; the context's path is returned."""
        return self._packaging.package(name, None if version is None else str(version), label,
                                 deployment_file=deployment_file, output=output)  # fmt: skip


class DataOperations(AssetOperations[Data]):
    """``ml_client.data``: Azure ML's verbs, and the impact of a version."""

    def __init__(self, service: AssetBackend[Data], lineage: LineageBackend) -> None:
        super().__init__(service)
        self._lineage = lineage

    def impact(self, name: str, version: str | int | None = None, label: str | None = None) -> LineageGraph:
        """Every job, data version and model derived from a data version, transitively."""
        return self._lineage.data_impact(name, None if version is None else str(version), label)


class NamedBackend(Protocol[N]):
    """What the compute and datastore groups call: their service in-process, ``HttpNamed`` over HTTP."""

    def create_or_update(self, item: N, /) -> N: ...
    def get(self, name: str, /) -> N: ...
    def list(self) -> Items[N]: ...
    def delete(self, name: str, /) -> None: ...


class DatastoreOperations:
    """``ml_client.datastores``: credentials go in, and never come back out."""

    def __init__(self, service: NamedBackend[Datastore]) -> None:
        self._service = service

    def create_or_update(self, datastore: Datastore) -> Datastore:
        return self._service.create_or_update(datastore)

    def get(self, name: str) -> Datastore:
        return self._service.get(name)

    def get_default(self) -> Datastore:
        return next(d for d in self._service.list() if d.is_default)

    def list(self) -> list[Datastore]:
        return self._service.list()

    def delete(self, name: str) -> None:
        self._service.delete(name)


class ConnectionBackend(NamedBackend[WorkspaceConnection], Protocol):
    def list_secrets(self, name: str) -> dict[str, str]: ...


class ConnectionOperations:
    """``ml_client.connections``: secrets go in, and come back only when asked for (audited)."""

    def __init__(self, service: ConnectionBackend) -> None:
        self._service = service

    def create_or_update(self, connection: WorkspaceConnection) -> WorkspaceConnection:
        return self._service.create_or_update(connection)

    def get(self, name: str, *, populate_secrets: bool = False) -> WorkspaceConnection:
        """The connection; with ``populate_secrets``, with its secrets (an audited read)."""
        found = self._service.get(name)
        if not populate_secrets:
            return found
        secrets = self._service.list_secrets(name)
        if found.type == "custom":
            return found.model_copy(update={"secrets": secrets})
        return found.model_copy(update={"api_key": secrets.get("key")})

    def list(self) -> list[WorkspaceConnection]:
        return self._service.list()

    def delete(self, name: str) -> None:
        self._service.delete(name)


class ComputeOperations:
    """``ml_client.compute``."""

    def __init__(self, service: NamedBackend[Compute]) -> None:
        self._service = service

    def begin_create_or_update(self, compute: Compute) -> Poller[Compute]:
        return Poller(self._service.create_or_update(compute))

    def create_or_update(self, compute: Compute) -> Compute:
        return self._service.create_or_update(compute)

    def get(self, name: str) -> Compute:
        return self._service.get(name)

    def list(self) -> list[Compute]:
        return self._service.list()

    def begin_delete(self, name: str) -> Poller[None]:
        self._service.delete(name)
        return Poller(None)

    def delete(self, name: str) -> None:
        self._service.delete(name)


class MetricLike(Protocol):
    """One logged value: a service's record, or what the server sent."""

    @property
    def step(self) -> int: ...
    @property
    def value(self) -> float: ...
    @property
    def timestamp(self) -> int: ...


class WorkspaceBackend(Protocol):
    """What the workspaces group calls: ``WorkspaceService`` in-process, ``HttpWorkspaces`` over HTTP."""

    def get(self, name: str, /) -> Workspace: ...
    def list(self) -> Items[Workspace]: ...
    def create(self, name: str, /) -> Workspace: ...
    def delete(self, name: str, /) -> None: ...
    def sync_keys(self, name: str, /) -> dict[str, int]: ...


class WorkspaceOperations:
    """``ml_client.workspaces``: the workspaces this client reaches by name: a server's, or in-process
    the named ones of this user (``~/.smalt/<name>``).

    Example::

        ml_client.workspaces.begin_create(Workspace(name="team")).result()
        [w.name for w in ml_client.workspaces.list()]
    """

    def __init__(self, service: WorkspaceBackend, current: str) -> None:
        self._service = service
        self._current = current

    def get(self, name: str | None = None) -> Workspace:
        """The workspace ``name`` (by default, the one this client works on)."""
        return self._service.get(name or self._current)

    def list(self) -> Items[Workspace]:
        return self._service.list()

    def begin_create(self, workspace: Any) -> Poller[Workspace]:
        """Create a workspace named ``workspace.name`` (an Azure ``Workspace`` object or a name)."""
        name = workspace if isinstance(workspace, str) else getattr(workspace, "name", None)
        if not isinstance(name, str):
            raise InvalidSpecError.one("a workspace to create needs a name", "name")
        return Poller(self._service.create(name))

    def begin_delete(self, name: str, **_: Any) -> Poller[None]:
        """Set a workspace aside (its folder moves to ``.deleted/``; nothing is erased)."""
        self._service.delete(name)
        return Poller(None)

    def begin_sync_keys(self, name: str | None = None) -> Poller[dict[str, int]]:
        """Rotate the key that encrypts the workspace's secrets (datastore credentials, connection
        secrets, endpoint keys): every one is sealed again with a new key. How many of each kind."""
        return Poller(self._service.sync_keys(name or self._current))


class JobBackend(Protocol):
    """What the job group calls: ``JobService`` in-process, ``HttpJobs`` over HTTP."""

    def create_or_update(self, job: AnyJob, /) -> AnyJob: ...
    def validate(self, job: AnyJob, /) -> Items[str]: ...
    def get(self, name: str, /) -> AnyJob: ...
    def list(self, *, status: str | None = None, experiment_name: str | None = None,
             include_archived: bool = False, max_results: int | None = None,
             order_by: str | None = None, parent_job_name: str | None = None) -> Items[AnyJob]: ...  # fmt: skip
    def metric_history(self, name: str, key: str | None = None, /) -> Mapping[str, Sequence[MetricLike]]: ...
    def stream(self, name: str, /) -> Iterator[str]: ...
    def cancel(self, name: str, /) -> AnyJob: ...
    def archive(self, name: str, /) -> None: ...
    def rerun(self, name: str, /) -> AnyJob: ...
    def download(self, name: str, download_path: str | Path, output_name: str | None, all: bool, /
                 ) -> Items[Path]: ...  # fmt: skip


class JobOperations:
    """``ml_client.jobs``: submit, follow and fetch command jobs.

    Example::

        job = ml_client.jobs.create_or_update(command(command="echo hello"))
        ml_client.jobs.stream(job.name)
    """

    def __init__(self, service: JobBackend, lineage: LineageBackend) -> None:
        self._service = service
        self._lineage = lineage

    def lineage(self, name: str) -> LineageGraph:
        """The graph upstream of a job: what it read, back to data and code, and what it ran."""
        return self._lineage.job_lineage(name)

    def rerun(self, name: str) -> AnyJob:
        """A new job with exactly the recorded code snapshot, environment and inputs of ``name``,
        linked to it; a pipeline is rerun with reuse turned off."""
        return self._service.rerun(name)

    def create_or_update(self, job: AnyJob, *, experiment_name: str | None = None) -> AnyJob:
        """Validate, resolve and start ``job`` (a command or pipeline job); returns it as recorded
        (or refuses it with every problem, having queued nothing)."""
        if experiment_name:
            job = job.model_copy(update={"experiment_name": experiment_name})
        return self._service.create_or_update(job)

    def validate(self, job: AnyJob) -> list[str]:
        """Check ``job`` as submitting would, running nothing; returns a pipeline's step names."""
        return self._service.validate(job)

    def get(self, name: str) -> AnyJob:
        return self._service.get(name)

    def list(self, *, status: str | None = None, experiment_name: str | None = None,
             include_archived: bool = False, max_results: int | None = None,
             order_by: str | None = None, parent_job_name: str | None = None) -> JobList:  # fmt: skip
        """Jobs, newest first; or ordered as MLflow's ``order_by`` (``"metrics.acc DESC"``), jobs
        without the key last. Each job carries the latest value of its metrics and its params.
        ``parent_job_name``: the steps of that pipeline instead."""
        return self._service.list(status=status, experiment_name=experiment_name, include_archived=include_archived,
                                  max_results=max_results, order_by=order_by,
                                  parent_job_name=parent_job_name)  # fmt: skip

    def get_metrics(self, name: str, key: str | None = None) -> MetricPoints:
        """Every value a job logged, per metric: ``{"acc": [{"step": 0, "value": 0.5, "timestamp": ...}]}``."""
        return {
            k: [{"step": m.step, "value": m.value, "timestamp": m.timestamp} for m in values]
            for k, values in self._service.metric_history(name, key).items()
        }

    def stream(self, name: str, *, out: TextIO | None = None) -> AnyJob:
        """Print the job's logs as they are written until it finishes; returns the finished job."""
        target = out or sys.stdout
        for chunk in self._service.stream(name):
            target.write(chunk)
            target.flush()
        return self._service.get(name)

    def cancel(self, name: str) -> AnyJob:
        return self._service.cancel(name)

    def begin_cancel(self, name: str) -> Poller[AnyJob]:
        return Poller(self._service.cancel(name))

    def archive(self, name: str) -> None:
        self._service.archive(name)

    def download(self, name: str, download_path: str | Path = ".", output_name: str | None = None,
                 all: bool = False) -> PathList:  # fmt: skip
        """Outputs to ``<download_path>/named-outputs/<output>``; ``all`` adds ``artifacts/``."""
        return self._service.download(name, download_path, output_name, all)


class EndpointBackend(Protocol):
    """What the endpoint and deployment groups call: ``EndpointService`` in-process,
    ``HttpEndpoints`` over HTTP."""

    def create_or_update(self, endpoint: OnlineEndpoint, /) -> OnlineEndpoint: ...
    def get(self, name: str, /) -> OnlineEndpoint: ...
    def list(self) -> Items[OnlineEndpoint]: ...
    def delete(self, name: str, /) -> None: ...
    def get_keys(self, name: str, /) -> EndpointAuthKeys | EndpointAuthToken: ...
    def regenerate_keys(self, name: str, key_type: str, /) -> None: ...
    def invoke(self, name: str, body: bytes, deployment: str | None = None, /) -> tuple[int, bytes]: ...
    def start(self, name: str, /) -> OnlineEndpoint: ...
    def stop(self, name: str, /) -> OnlineEndpoint: ...
    def start_all(self) -> Items[OnlineEndpoint]: ...
    def create_or_update_deployment(
        self, deployment: OnlineDeployment, /, *, all_traffic: bool = False
    ) -> OnlineDeployment: ...
    def get_deployment(self, endpoint: str, name: str, /) -> OnlineDeployment: ...
    def list_deployments(self, endpoint: str, /) -> Items[OnlineDeployment]: ...
    def delete_deployment(self, endpoint: str, name: str, /) -> None: ...
    def get_logs(self, endpoint: str, name: str, lines: int | None = None, /) -> str: ...


class OnlineEndpointOperations:
    """``ml_client.online_endpoints``: endpoints, their keys and tokens, and scoring requests."""

    def __init__(self, service: EndpointBackend) -> None:
        self._service = service

    def begin_create_or_update(self, endpoint: OnlineEndpoint, **kwargs: Any) -> Poller[OnlineEndpoint]:
        """Create the endpoint (or change it: traffic, mirror traffic, auth mode, tags).

        Example::

            endpoint.traffic = {"blue": 90, "green": 10}
            ml_client.online_endpoints.begin_create_or_update(endpoint).result()
        """
        from smalt.specs import prepare

        return Poller(self._service.create_or_update(prepare(endpoint)))

    def get(self, name: str) -> OnlineEndpoint:
        return self._service.get(name)

    def list(self) -> Items[OnlineEndpoint]:
        return self._service.list()

    def begin_delete(self, name: str) -> Poller[None]:
        self._service.delete(name)
        return Poller(None)

    def get_keys(self, name: str) -> EndpointAuthKeys | EndpointAuthToken:
        """``EndpointAuthKeys`` (``primary_key``, ``secondary_key``) or ``EndpointAuthToken``."""
        return self._service.get_keys(name)

    def begin_regenerate_keys(self, name: str, *, key_type: str = "primary") -> Poller[None]:
        self._service.regenerate_keys(name, key_type)
        return Poller(None)

    def invoke(
        self, endpoint_name: str, *, request_file: str | Path | None = None, deployment_name: str | None = None,
        request: str | bytes | None = None, **kwargs: Any,
    ) -> str:  # fmt: skip
        """Score one request (the JSON in ``request_file``); the response body. An answer with a
        4xx or 5xx status raises, with the endpoint's error message."""
        if request_file is not None:
            body = Path(request_file).read_bytes()
        elif request is not None:
            body = request.encode() if isinstance(request, str) else request
        else:
            raise InvalidStateError("invoke needs request_file (or request)")
        status, answer = self._service.invoke(endpoint_name, body, deployment_name)
        if status >= 400:
            raise UserCodeError(
                f"Online endpoint '{endpoint_name}' answered {status}: {answer.decode(errors='replace')}"
            )
        return answer.decode()

    def begin_start(self, name: str) -> Poller[OnlineEndpoint]:
        return Poller(self._service.start(name))

    def begin_stop(self, name: str) -> Poller[OnlineEndpoint]:
        return Poller(self._service.stop(name))

    def start_all(self) -> Items[OnlineEndpoint]:
        """Bring every endpoint back (after a restart of the machine, say)."""
        return self._service.start_all()


class OnlineDeploymentOperations:
    """``ml_client.online_deployments``: the deployments behind an endpoint."""

    def __init__(self, service: EndpointBackend) -> None:
        self._service = service

    def begin_create_or_update(self, deployment: OnlineDeployment, *, all_traffic: bool = False,
                               **kwargs: Any) -> Poller[OnlineDeployment]:  # fmt: skip
        """Start (or replace, with no request dropped) the deployment's instances."""
        from smalt.specs import prepare

        return Poller(self._service.create_or_update_deployment(prepare(deployment), all_traffic=all_traffic))

    def get(self, name: str, endpoint_name: str) -> OnlineDeployment:
        return self._service.get_deployment(endpoint_name, name)

    def list(self, endpoint_name: str) -> Items[OnlineDeployment]:
        return self._service.list_deployments(endpoint_name)

    def begin_delete(self, name: str, endpoint_name: str) -> Poller[None]:
        self._service.delete_deployment(endpoint_name, name)
        return Poller(None)

    def get_logs(self, name: str, endpoint_name: str, lines: int | None = None, **kwargs: Any) -> str:
        return self._service.get_logs(endpoint_name, name, lines)
