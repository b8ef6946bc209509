"""One interface, two transports: every verb of the SDK's operation groups has its REST route, and
every route under a workspace is a verb of the SDK (issue 19). Adding a route without its SDK verb,
or a verb without its route, fails here."""

from __future__ import annotations

import inspect
from pathlib import Path

from smalt import MLClient
from smalt.server.app import create_app
from smalt.services import open_workspace

WS = "/workspaces/{workspace}"
ASSETS = ("data", "environments", "components", "models")
#: Each SDK verb (group.method) and the route(s) it calls over HTTP, under /api/v1; None where a
#: verb calls no route of its own (it reads what another verb answers).
VERBS: dict[str, tuple[str, ...] | None] = {
    "workspaces.get": ("GET /workspaces/{workspace}",),
    "workspaces.list": ("GET /workspaces",),
    "workspaces.begin_create": ("POST /workspaces",),
    "workspaces.begin_delete": ("DELETE /workspaces/{workspace}",),
    "workspaces.begin_sync_keys": ("POST /workspaces/{workspace}/sync-keys",),
    **{f"{group}.{verb}": routes for group in ASSETS for verb, routes in {
        "create_or_update": (f"POST {WS}/{{noun}}",),
        "get": (f"GET {WS}/{{noun}}/{{name}}",),
        "list": (f"GET {WS}/{{noun}}",),
        "archive": (f"POST {WS}/{{noun}}/{{name}}/archive",),
        "restore": (f"POST {WS}/{{noun}}/{{name}}/restore",),
        "download": (f"GET {WS}/{{noun}}/{{name}}/download",),
    }.items()},
    "data.impact": (f"GET {WS}/data/{{name}}/impact",),
    "models.lineage": (f"GET {WS}/models/{{name}}/lineage",),
    "models.compare": (f"GET {WS}/models/{{name}}/compare",),
    "models.aliases": (f"GET {WS}/models/{{name}}/aliases",),
    "models.alias_history": (f"GET {WS}/models/{{name}}/alias-history",),
    "models.set_alias": (f"PUT {WS}/models/{{name}}/aliases/{{alias}}",),
    "models.remove_alias": (f"DELETE {WS}/models/{{name}}/aliases/{{alias}}",),
    "models.package_context": (f"POST {WS}/models/{{name}}/package",),
    "datastores.create_or_update": (f"POST {WS}/datastores",),
    "datastores.get": (f"GET {WS}/datastores/{{name}}",),
    "datastores.get_default": None,  # the default of datastores.list
    "datastores.list": (f"GET {WS}/datastores",),
    "datastores.delete": (f"DELETE {WS}/datastores/{{name}}",),
    "connections.create_or_update": (f"POST {WS}/connections",),
    "connections.get": (f"GET {WS}/connections/{{name}}", f"POST {WS}/connections/{{name}}/listsecrets"),
    "connections.list": (f"GET {WS}/connections",),
    "connections.delete": (f"DELETE {WS}/connections/{{name}}",),
    "principals.create_user": ("POST /users",),
    "principals.create_service_principal": ("POST /service-principals",),
    "principals.get": ("GET /principals/{name}",),
    "principals.list": ("GET /principals",),
    "principals.delete": ("DELETE /principals/{name}",),
    "principals.reset_secret": ("POST /principals/{name}/reset-secret",),
    "principals.create_token": ("POST /principals/{name}/tokens",),
    "principals.list_tokens": ("GET /principals/{name}/tokens",),
    "principals.revoke_token": ("DELETE /principals/{name}/tokens/{token}",),
    "principals.whoami": ("GET /whoami",),
    "roles.list": ("GET /roles",),
    "roles.get": ("GET /roles/{name}",),
    "roles.create_or_update": ("POST /roles",),
    "roles.delete": ("DELETE /roles/{name}",),
    "role_assignments.create": ("POST /role-assignments",),
    "role_assignments.list": ("GET /role-assignments",),
    "role_assignments.delete": ("DELETE /role-assignments/{assignment}",),
    "audit.list": ("GET /audit",),
    "compute.create_or_update": (f"POST {WS}/computes",),
    "compute.begin_create_or_update": (f"POST {WS}/computes",),
    "compute.get": (f"GET {WS}/computes/{{name}}",),
    "compute.list": (f"GET {WS}/computes",),
    "compute.delete": (f"DELETE {WS}/computes/{{name}}",),
    "compute.begin_delete": (f"DELETE {WS}/computes/{{name}}",),
    "jobs.create_or_update": (f"POST {WS}/jobs",),
    "jobs.validate": (f"POST {WS}/jobs/validate",),
    "jobs.get": (f"GET {WS}/jobs/{{name}}",),
    "jobs.list": (f"GET {WS}/jobs",),
    "jobs.get_metrics": (f"GET {WS}/jobs/{{name}}/metrics",),
    "jobs.stream": (f"GET {WS}/jobs/{{name}}/stream", f"GET {WS}/jobs/{{name}}"),
    "jobs.cancel": (f"POST {WS}/jobs/{{name}}/cancel",),
    "jobs.begin_cancel": (f"POST {WS}/jobs/{{name}}/cancel",),
    "jobs.archive": (f"POST {WS}/jobs/{{name}}/archive",),
    "jobs.rerun": (f"POST {WS}/jobs/{{name}}/rerun",),
    "jobs.download": (f"GET {WS}/jobs/{{name}}/download",),
    "jobs.lineage": (f"GET {WS}/jobs/{{name}}/lineage",),
    "online_endpoints.begin_create_or_update": (f"POST {WS}/online-endpoints",),
    "online_endpoints.get": (f"GET {WS}/online-endpoints/{{name}}",),
    "online_endpoints.list": (f"GET {WS}/online-endpoints",),
    "online_endpoints.begin_delete": (f"DELETE {WS}/online-endpoints/{{name}}",),
    "online_endpoints.get_keys": (f"POST {WS}/online-endpoints/{{name}}/keys",),
    "online_endpoints.begin_regenerate_keys": (f"POST {WS}/online-endpoints/{{name}}/regenerate-keys",),
    "online_endpoints.begin_start": (f"POST {WS}/online-endpoints/{{name}}/start",),
    "online_endpoints.begin_stop": (f"POST {WS}/online-endpoints/{{name}}/stop",),
    "online_endpoints.start_all": (f"POST {WS}/online-endpoints/start-all",),
    "online_endpoints.invoke": (f"POST {WS}/online-endpoints/{{name}}/score",),
    "online_deployments.begin_create_or_update": (f"POST {WS}/online-endpoints/{{name}}/deployments",),
    "online_deployments.get": (f"GET {WS}/online-endpoints/{{name}}/deployments/{{deployment}}",),
    "online_deployments.list": (f"GET {WS}/online-endpoints/{{name}}/deployments",),
    "online_deployments.begin_delete": (f"DELETE {WS}/online-endpoints/{{name}}/deployments/{{deployment}}",),
    "online_deployments.get_logs": (f"GET {WS}/online-endpoints/{{name}}/deployments/{{deployment}}/logs",),
}
#: Routes every create that carries local files calls first (client.transport.HttpUploads).
UPLOADS = (f"POST {WS}/uploads/missing", f"PUT {WS}/uploads/blobs/{{digest}}", f"POST {WS}/uploads")
GROUPS = ("workspaces", *ASSETS, "datastores", "connections", "compute", "jobs", "online_endpoints",
          "online_deployments", "principals", "roles", "role_assignments", "audit")
#: Routes of smalt's API that are the SDK's verbs: those of a workspace, and those of who may call
#: (the token endpoint is the credentials' own, not a verb).
SDK_ROUTES = ("/api/v1/workspaces", "/api/v1/users", "/api/v1/service-principals", "/api/v1/principals",
              "/api/v1/roles", "/api/v1/role-assignments", "/api/v1/audit", "/api/v1/whoami")


def _routes(tmp_path: Path) -> set[str]:
    context = open_workspace(tmp_path / "ws")
    try:
        paths = create_app(context).openapi()["paths"]
    finally:
        context.close()
    return {f"{method.upper()} {path.removeprefix('/api/v1')}" for path, operations in paths.items()
            if path.startswith(SDK_ROUTES) for method in operations}  # fmt: skip


def _verbs(client: MLClient) -> set[str]:
    members = {group: inspect.getmembers(getattr(client, group), callable) for group in GROUPS}
    return {f"{group}.{name}" for group, found in members.items() for name, _ in found if not name.startswith("_")}


def test_every_sdk_verb_has_its_route_and_every_route_its_verb(tmp_path: Path) -> None:
    with MLClient(workspace=tmp_path / "sdk") as client:
        verbs = _verbs(client)
    routes = _routes(tmp_path)
    named = {route for found in VERBS.values() if found for route in found} | set(UPLOADS)

    assert sorted(verbs - VERBS.keys()) == [], "an SDK verb with no route named in VERBS"
    assert sorted(VERBS.keys() - verbs) == [], "VERBS names a verb the SDK does not have"
    assert sorted(named - routes) == [], "VERBS names a route the server does not serve"
    assert sorted(routes - named) == [], "an API route (a workspace's, or of who may call) that no SDK verb calls"

