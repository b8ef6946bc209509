"""Online endpoints and their deployments over REST:
``/api/v1/workspaces/{workspace}/online-endpoints[/{name}/deployments]``.

The endpoint's processes run where the server runs; a client scores through ``.../score`` (the
server forwards the request with the endpoint's credentials) or at the scoring URI, on the
server's machine. A deployment's local files arrive uploaded (``routes/uploads.py``): a local path
in a body is refused, as for assets.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from smalt.entities import EndpointAuthKeys, OnlineDeployment, OnlineEndpoint
from smalt.errors import InvalidSpecError
from smalt.server.access import requires
from smalt.server.routes.workspaces import Workspace
from smalt.services.endpoints import EndpointService
from smalt.services.workspace import WorkspaceContext
from smalt.specs.loader import refuse_local_paths

router = APIRouter(prefix="/workspaces/{workspace}/online-endpoints")
EndpointName = Annotated[str, Path(max_length=255)]
DeploymentName = Annotated[str, Path(max_length=255)]
#: The most a scoring request may carry through the server.
MAX_REQUEST_BYTES = 100 << 20


def _service(context: WorkspaceContext) -> EndpointService:
    return EndpointService(context)


@router.get("", dependencies=[requires("workspaces/onlineEndpoints/read")])
def list_endpoints(context: Workspace) -> list[dict[str, Any]]:
    return [e.to_dict() for e in _service(context).list()]


@router.post("", status_code=201, dependencies=[requires("workspaces/onlineEndpoints/write")])
def create_endpoint(context: Workspace, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    from smalt import specs

    endpoint = specs.from_values("online-endpoint", body)
    assert isinstance(endpoint, OnlineEndpoint)
    return _service(context).create_or_update(endpoint).to_dict()


@router.post("/start-all", dependencies=[requires("workspaces/onlineEndpoints/write")])
def start_all(context: Workspace) -> list[dict[str, Any]]:
    return [e.to_dict() for e in _service(context).start_all()]


@router.get("/{name}", dependencies=[requires("workspaces/onlineEndpoints/read")])
def get_endpoint(context: Workspace, name: EndpointName) -> dict[str, Any]:
    return _service(context).get(name).to_dict()


@router.delete("/{name}", status_code=204, dependencies=[requires("workspaces/onlineEndpoints/delete")])
def delete_endpoint(context: Workspace, name: EndpointName) -> None:
    _service(context).delete(name)


@router.post("/{name}/keys", dependencies=[requires("workspaces/onlineEndpoints/listKeys/action")])
def get_keys(context: Workspace, name: EndpointName) -> dict[str, Any]:
    """The endpoint's keys (key auth) or a fresh token (aml_token auth)."""
    credentials = _service(context).get_keys(name)
    kind = "keys" if isinstance(credentials, EndpointAuthKeys) else "token"
    return {kind: credentials.model_dump(mode="json")}


@router.post(
    "/{name}/regenerate-keys",
    status_code=204,
    dependencies=[requires("workspaces/onlineEndpoints/regenerateKeys/action")],
)
def regenerate_keys(
    context: Workspace, name: EndpointName, key_type: Annotated[str, Query(pattern="^(primary|secondary)$")] = "primary"
) -> None:
    _service(context).regenerate_keys(name, key_type)


@router.post("/{name}/start", dependencies=[requires("workspaces/onlineEndpoints/write")])
def start_endpoint(context: Workspace, name: EndpointName) -> dict[str, Any]:
    return _service(context).start(name).to_dict()


@router.post("/{name}/stop", dependencies=[requires("workspaces/onlineEndpoints/write")])
def stop_endpoint(context: Workspace, name: EndpointName) -> dict[str, Any]:
    return _service(context).stop(name).to_dict()


@router.post("/{name}/score", dependencies=[requires("workspaces/onlineEndpoints/score/action", audited=False)])
async def score(
    request: Request, context: Workspace, name: EndpointName,
    deployment: Annotated[str | None, Query(max_length=255)] = None,
) -> dict[str, Any]:  # fmt: skip
    """One scoring request, forwarded with the endpoint's credentials: its status and body."""
    body = await request.body()
    if len(body) > MAX_REQUEST_BYTES:
        raise InvalidSpecError.one(f"a scoring request may be at most {MAX_REQUEST_BYTES >> 20} MiB", "body")
    status, answer = await run_in_threadpool(_service(context).invoke, name, body, deployment)
    return {"status": status, "body": answer.decode(errors="replace")}


@router.get("/{name}/deployments", dependencies=[requires("workspaces/onlineEndpoints/deployments/read")])
def list_deployments(context: Workspace, name: EndpointName) -> list[dict[str, Any]]:
    return [d.to_dict() for d in _service(context).list_deployments(name)]


@router.post(
    "/{name}/deployments", status_code=201, dependencies=[requires("workspaces/onlineEndpoints/deployments/write")]
)
def create_deployment(
    context: Workspace, name: EndpointName, body: Annotated[dict[str, Any], Body()], all_traffic: bool = False
) -> dict[str, Any]:
    from smalt import specs

    refuse_local_paths("online-deployment", body)
    deployment = specs.from_values("online-deployment", {**body, "endpoint_name": name})
    assert isinstance(deployment, OnlineDeployment)
    return _service(context).create_or_update_deployment(deployment, all_traffic=all_traffic).to_dict()


@router.get("/{name}/deployments/{deployment}", dependencies=[requires("workspaces/onlineEndpoints/deployments/read")])
def get_deployment(context: Workspace, name: EndpointName, deployment: DeploymentName) -> dict[str, Any]:
    return _service(context).get_deployment(name, deployment).to_dict()


@router.delete(
    "/{name}/deployments/{deployment}",
    status_code=204,
    dependencies=[requires("workspaces/onlineEndpoints/deployments/delete")],
)
def delete_deployment(context: Workspace, name: EndpointName, deployment: DeploymentName) -> None:
    _service(context).delete_deployment(name, deployment)


@router.get(
    "/{name}/deployments/{deployment}/logs",
    dependencies=[requires("workspaces/onlineEndpoints/deployments/getLogs/action")],
)
def deployment_logs(
    context: Workspace, name: EndpointName, deployment: DeploymentName,
    lines: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> dict[str, Any]:  # fmt: skip
    return {"logs": _service(context).get_logs(name, deployment, lines)}
