"""``MLClient``: the SDK's entry point, shaped like Azure ML's ``azure.ai.ml.MLClient``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smalt.client.operations import (
    AssetOperations,
    ComputeOperations,
    ConnectionOperations,
    DataOperations,
    DatastoreOperations,
    JobOperations,
    ModelOperations,
    OnlineDeploymentOperations,
    OnlineEndpointOperations,
    WorkspaceOperations,
)
from smalt.entities import CommandComponent, Compute, Data, Datastore, Environment, Model, Workspace
from smalt.entities.workspace import WORKSPACE_ENV
from smalt.errors import ConfigurationError, NotFoundError

if TYPE_CHECKING:
    from smalt.services import WorkspaceContext


# Azure ML's search order: each (folder, file) pair all the way up before the next pair.
_CONFIG_PLACES = ((".azureml", "config.json"), ("aml_config", "config.json"), ("", "config.json"))
_MAX_LEVELS = 20


def _one_segment(name: str) -> bool:
    """Whether ``name`` can name a server's workspace at all (a folder's path cannot)."""
    return 0 < len(name) <= 255 and name not in (".", "..") and not any(c in name for c in "/\\\x00")


class MLClient:
    """A handle on one workspace.

    Examples::

        ml_client = MLClient()                          # the workspace smalt resolves
        ml_client = MLClient(workspace="./.smalt")      # a given folder
        ml_client = MLClient.from_config()              # config.json, as Azure ML finds it
        ml_client = MLClient(credential, sub, rg, "my-ws")  # Azure ML code, unchanged

    ``MLClient(url=...)`` (or ``SMALT_URL``, unless a workspace folder is given) works on the
    workspace ``smalt server`` holds there, over HTTP, with the same verbs and errors.
    Through a server, ``credential`` authenticates (``smalt.client.credentials``: a service
    principal's ``ClientSecretCredential``, a ``TokenCredential``, or by default the chain of
    ``AZURE_CLIENT_ID``/``AZURE_CLIENT_SECRET``/``AZURE_TENANT_ID``, ``SMALT_TOKEN`` and the stored
    ``smalt login``); azure-identity's own credentials stand for that default chain.
    ``subscription_id`` and ``resource_group_name`` are accepted so that Azure ML code runs
    unchanged; a ``workspace_name`` picks ``~/.smalt/<workspace_name>`` unless a workspace path or
    ``SMALT_WORKSPACE`` says otherwise.
    """

    def __init__(
        self,
        credential: Any = None,
        subscription_id: str | None = None,
        resource_group_name: str | None = None,
        workspace_name: str | None = None,
        *,
        workspace: str | os.PathLike[str] | None = None,
        url: str | None = None,
        token: str | None = None,
        **kwargs: Any,
    ) -> None:
        # SMALT_URL names a server; a workspace folder given here wins over it.
        url = url or (os.environ.get("SMALT_URL") if workspace is None else None)
        if url:
            self._connect(url, token, workspace_name, credential)
            return
        if workspace is None and not os.environ.get(WORKSPACE_ENV) and workspace_name:
            workspace = Path.home() / ".smalt" / workspace_name
        self._open(workspace, workspace_name)

    def _open(self, workspace: str | os.PathLike[str] | None, workspace_name: str | None) -> None:
        """The operation groups in-process, on the services of the workspace folder opened."""
        from smalt.services import (
            AssetService,
            ComputeService,
            DatastoreService,
            open_workspace,
            resolve_path,
        )
        from smalt.services.endpoints import EndpointService
        from smalt.services.jobs import JobService
        from smalt.services.lineage import LineageService
        from smalt.services.packaging import PackagingService
        from smalt.services.workspace import kept
        from smalt.services.workspaces import WorkspaceService

        path = resolve_path(workspace)
        # A process forked warm (the CLI's agent's child) finds the workspace open, its statements
        # compiled; it is the agent's to close, not this client's.
        self._kept = kept(path)
        self._context: WorkspaceContext | None = self._kept or open_workspace(path, name=workspace_name)
        self._held = WorkspaceService(Path.home() / ".smalt", primary=self._context)
        self.workspaces = WorkspaceOperations(self._held, self._context.name)
        lineage = LineageService(self._context)
        self.data = DataOperations(AssetService(self._context, Data), lineage)
        self.environments: AssetOperations[Environment] = AssetOperations(AssetService(self._context, Environment))
        self.components: AssetOperations[CommandComponent] = AssetOperations(
            AssetService(self._context, CommandComponent)
        )
        self.models = ModelOperations(AssetService(self._context, Model), lineage, PackagingService(self._context))
        self.datastores = DatastoreOperations(DatastoreService(self._context))
        self.compute = ComputeOperations(ComputeService(self._context))
        from smalt.services.connections import ConnectionService

        self.connections = ConnectionOperations(ConnectionService(self._context))
        endpoints = EndpointService(self._context)
        self.online_endpoints = OnlineEndpointOperations(endpoints)
        self.online_deployments = OnlineDeploymentOperations(endpoints)
        jobs = JobService(self._context)
        self.jobs = JobOperations(jobs, lineage)
        from smalt.services.audit import AuditService
        from smalt.services.identities import IdentityService
        from smalt.services.roles import RoleService

        roles = RoleService(self._context)
        self._access(IdentityService(self._context), roles, roles, AuditService(self._context))
        # The next smalt command after a supervisor died marks its job Failed (NotResponding).
        jobs.reap_stale()

    def _connect(self, url: str, token: str | None, workspace_name: str | None, credential: Any = None) -> None:
        """The operation groups over HTTP, on the workspace ``workspace_name`` (or the only one)
        that ``smalt server`` at ``url`` holds."""
        from smalt.client.rest import RestClient
        from smalt.client.transport import (
            HttpAssets,
            HttpConnections,
            HttpEndpoints,
            HttpJobs,
            HttpLineage,
            HttpNamed,
            HttpPackaging,
            HttpWorkspaces,
        )

        self._context = None
        self._rest = rest = RestClient(url, token=token, credential=credential)
        try:
            if workspace_name is not None and not _one_segment(workspace_name):
                raise NotFoundError(f"Workspace '{workspace_name}' not found.",
                                    hint="through a server, a workspace is named, not a folder: smalt workspace list")
            if workspace_name is None:
                # The server lists the workspace it was started on first: a client naming none gets it.
                held = rest.call("GET", "/workspaces")
                if not held:
                    raise ConfigurationError(f"The server at {url} holds no workspace.")
                workspace_name = str(held[0]["name"])
            self._remote = Workspace.model_validate(rest.call("GET", f"/workspaces/{workspace_name}"))
        except BaseException:
            rest.close()
            raise
        self.workspaces = WorkspaceOperations(HttpWorkspaces(rest), workspace_name)
        lineage = HttpLineage(rest, workspace_name)
        packaging: Any = HttpPackaging(rest, workspace_name)
        self.data = DataOperations(HttpAssets(rest, workspace_name, Data), lineage)
        self.environments = AssetOperations(HttpAssets(rest, workspace_name, Environment))
        self.components = AssetOperations(HttpAssets(rest, workspace_name, CommandComponent))
        self.models = ModelOperations(HttpAssets(rest, workspace_name, Model), lineage, packaging)
        self.datastores = DatastoreOperations(HttpNamed(rest, workspace_name, "datastores", Datastore))
        self.compute = ComputeOperations(HttpNamed(rest, workspace_name, "computes", Compute))
        self.connections = ConnectionOperations(HttpConnections(rest, workspace_name))
        endpoints = HttpEndpoints(rest, workspace_name)
        self.online_endpoints = OnlineEndpointOperations(endpoints)
        self.online_deployments = OnlineDeploymentOperations(endpoints)
        self.jobs = JobOperations(HttpJobs(rest, workspace_name), lineage)
        from smalt.client.access import HttpAudit, HttpPrincipals, HttpRoles

        roles = HttpRoles(rest)
        self._access(HttpPrincipals(rest), roles, roles, HttpAudit(rest))

    def _access(self, principals: Any, roles: Any, assignments: Any, audit: Any) -> None:
        """The groups of who may call a server (``client/access.py``)."""
        from smalt.client.access import AuditOperations, PrincipalOperations, RoleAssignmentOperations, RoleOperations

        self.principals = PrincipalOperations(principals)
        self.roles = RoleOperations(roles)
        self.role_assignments = RoleAssignmentOperations(assignments)
        self.audit = AuditOperations(audit)

    @classmethod
    def from_config(
        cls,
        credential: Any = None,
        *,
        path: str | os.PathLike[str] | None = None,
        file_name: str | None = None,
        **kwargs: Any,
    ) -> MLClient:
        """Find ``config.json`` as Azure ML does (``.azureml/``, ``aml_config/``, then plain, searching
        up from ``path`` or the current directory) and open the workspace it names.

        smalt reads ``workspace`` (a folder, relative to the file) or Azure ML's ``workspace_name``.
        """
        config_file = _find_config(Path(path) if path else Path.cwd(), file_name)
        try:
            config = json.loads(config_file.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{config_file} is not valid JSON (line {exc.lineno}): {exc.msg}.") from exc
        if not isinstance(config, dict):
            raise ConfigurationError(f"{config_file} must hold a JSON object.")
        if "workspace" in config:
            folder = (config_file.parent / str(config["workspace"])).resolve()
            return cls(credential, workspace=folder, **kwargs)
        name = config.get("workspace_name")
        if not name and "Scope" in config:
            parts = str(config["Scope"]).split("/")
            name = parts[8] if len(parts) > 8 else None
        if not name:
            raise ConfigurationError(
                f"{config_file} names no workspace.",
                hint='add "workspace": "<folder>" or "workspace_name": "<name>"',
            )
        return cls(credential, config.get("subscription_id"), config.get("resource_group"), str(name), **kwargs)

    @property
    def workspace(self) -> Workspace:
        """The open workspace: name, folder, database (password hidden) and blob store."""
        return self._context.describe() if self._context is not None else self._remote

    @property
    def workspace_name(self) -> str:
        return self.workspace.name

    def close(self) -> None:
        if self._context is not None:
            self._held.close()  # the other workspaces it opened (workspaces.get/list)
            if self._kept is not None:
                self._kept.store.release_connections()
            else:
                self._context.close()
        else:
            self._rest.close()

    def __enter__(self) -> MLClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _find_config(start: Path, file_name: str | None) -> Path:
    if start.is_file():
        return start
    names = [file_name] if file_name else ["config.json"]
    start = start.resolve()
    levels = [start, *start.parents][: _MAX_LEVELS + 1]
    for folder_name, _ in _CONFIG_PLACES:
        for name in names:
            for level in levels:
                candidate = level / folder_name / name if folder_name else level / name
                if candidate.is_file():
                    return candidate
    raise ConfigurationError(
        f"We could not find config.json in: {start} or in its parent directories.",
        hint='write a config.json with {"workspace": "<folder>"}, or call MLClient(workspace=...)',
    )
