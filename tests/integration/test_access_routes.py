"""Every route of the server behind access control (issue 20), called in process through the ASGI app:
without a credential each answers 401 (but the few public ones), to a principal whose role lacks its
action 403 with a denied entry in the audit log, and to an Owner neither. Then the token endpoint
(its grants, its failures slowed and then refused), and each way of authenticating: HTTP Basic for
MLflow clients, the server's own token, personal access tokens, and the request size limit."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from smalt.entities.role import RoleDefinition
from smalt.server.access import PUBLIC, AccessControl, Limits, Requires, check_declared, declared, public, requires
from smalt.server.app import create_app
from smalt.services import open_workspace
from smalt.services.audit import AuditService
from smalt.services.identities import Caller, IdentityService
from smalt.services.roles import RoleService
from smalt.services.workspace import WorkspaceContext
from smalt.services.workspaces import WorkspaceService

OWNER, OWNER_PASSWORD = "owner", "owner-password-1"
NOBODY, NOBODY_PASSWORD = "nobody", "nobody-password-1"
#: A custom role whose only action is one no route declares: it grants nothing.
NOTHING = {"Name": "Nothing", "Actions": ["Microsoft.MachineLearningServices/nothing/read"]}
TOKEN_ACTION = "Microsoft.Authorization/token/action"
MLFLOW_SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"


class Client:
    """The app called in process (httpx over ASGI) from synchronous test code: one event loop in a
    thread of its own, as a server's would be."""

    def __init__(self, app: Any, portal: BlockingPortal) -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self._client = httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60)
        self._portal = portal

    def request(self, method: str, url: str, *, token: str | None = None, **kwargs: Any) -> httpx.Response:
        if token is not None:
            kwargs["headers"] = {"Authorization": f"Bearer {token}", **kwargs.get("headers", {})}
        return self._portal.call(partial(self._client.request, method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        self._portal.call(self._client.aclose)


@dataclass
class Server:
    workspace: WorkspaceContext
    app: FastAPI
    http: Client

    @property
    def control(self) -> AccessControl:
        control: AccessControl = self.app.state.access
        return control

    def token(self, name: str, password: str) -> str:
        """An access token from the token endpoint's password grant."""
        answer = self.http.post("/api/v1/token", data={"grant_type": "password", "username": name,
                                                      "password": password})  # fmt: skip
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as opened:
        yield opened


@pytest.fixture
def portal(stack: ExitStack) -> BlockingPortal:
    return stack.enter_context(start_blocking_portal())


@pytest.fixture
def workspace(tmp_path: Path, stack: ExitStack) -> WorkspaceContext:
    """A workspace with an Owner (at the server) and a principal whose only role grants nothing."""
    opened = open_workspace(tmp_path / "ws")
    stack.callback(opened.close)
    identities, roles = IdentityService(opened), RoleService(opened)
    identities.create_user(OWNER, OWNER_PASSWORD)
    roles.assign(OWNER, "Owner", "/")
    identities.create_user(NOBODY, NOBODY_PASSWORD)
    roles.create_or_update_role(RoleDefinition.model_validate(NOTHING))
    roles.assign(NOBODY, "Nothing", "/")
    return opened


def serve(workspace: WorkspaceContext, stack: ExitStack, portal: BlockingPortal, **options: Any) -> Server:
    held: WorkspaceService | None = options.pop("held", None)
    app = create_app(workspace, held=held, access=AccessControl(workspace, enabled=True, **options))
    http = Client(app, portal)
    stack.callback(http.close)
    return Server(workspace, app, http)


@pytest.fixture
def server(workspace: WorkspaceContext, stack: ExitStack, portal: BlockingPortal) -> Server:
    return serve(workspace, stack, portal)


# -- the route walk -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # as the OpenAPI document writes it
    url: str  # with plausible values in its braces
    body: bool
    described: dict[str, Any]  # the document's operation
    needs: Requires  # what the route declares

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def call(self, http: Client, **kwargs: Any) -> httpx.Response:
        return http.request(self.method, self.url, **({"json": {}} if self.body else {}), **kwargs)


def flat_routes(routes: Sequence[Any]) -> Iterator[Any]:
    """Each route of an app, those of included routers too (FastAPI 0.16x keeps an included router
    whole in ``app.routes``, as one ``_IncludedRouter``, and resolves its routes when asked)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif callable(getattr(route, "effective_route_contexts", None)):
            yield from route.effective_route_contexts()


#: The OpenAPI document's paths and each route's declaration: the same for every app ``create_app``
#: makes (its routers are the modules'), so built once.
_DESCRIBED: list[tuple[dict[str, Any], dict[tuple[str, str], Requires]]] = []


def described(app: FastAPI) -> tuple[dict[str, Any], dict[tuple[str, str], Requires]]:
    if not _DESCRIBED:
        declarations: dict[tuple[str, str], Requires] = {}
        for route in flat_routes(app.routes):
            needs = declared(route)
            assert needs is not None, f"{route.path_format} declares no action"
            for method in route.methods or ():
                declarations[(method, route.path_format)] = needs
        _DESCRIBED.append((app.openapi()["paths"], declarations))
    return _DESCRIBED[0]


def operations(server: Server) -> list[Operation]:
    """Every operation in the OpenAPI document, with what its route declares."""
    paths, declarations = described(server.app)

    def fill(path: str) -> str:
        values = {"workspace": server.workspace.name, "noun": "data", "path": "x",
                  "name": "someone-else" if path.startswith("/api/v1/principals/") else "x"}  # fmt: skip
        return re.sub(r"\{(\w+)\}", lambda found: values.get(found.group(1), "x"), path)

    found = [Operation(method.upper(), path, fill(path), "requestBody" in described, described,
                       declarations[(method.upper(), path)])
             for path, methods in paths.items()
             for method, described in methods.items()]  # fmt: skip
    assert len(found) > 100  # the whole document: MLflow's protocol and smalt's API
    return found


def test_every_operation_in_the_document_carries_its_action(server: Server) -> None:
    missing = [f"{op.label} (declares {op.needs.action}, scope {op.needs.scope})" for op in operations(server)
               if op.described.get("x-smalt-action") != op.needs.action
               or op.described.get("x-smalt-scope") != op.needs.scope]  # fmt: skip
    assert not missing, f"{len(missing)} operations lack x-smalt-action/x-smalt-scope:\n" + "\n".join(missing[:20])


def test_an_app_with_an_undeclared_route_is_refused() -> None:
    app = FastAPI()

    @app.get("/declared", dependencies=[public()])
    def _declared() -> None: ...

    @app.get("/bare")
    def _bare() -> None: ...

    with pytest.raises(RuntimeError, match="/bare"):
        check_declared(app)


def test_an_undeclared_route_of_an_included_router_is_refused() -> None:
    """Every route of smalt's server is in an included router: these too must declare an action."""
    router = APIRouter()

    @router.get("/declared", dependencies=[requires("workspaces/read")])
    def _declared() -> None: ...

    @router.get("/hidden")
    def _hidden() -> None: ...

    app = FastAPI()
    app.include_router(router, prefix="/api")
    with pytest.raises(RuntimeError, match="/api/hidden"):
        check_declared(app)


def test_without_a_credential_every_route_but_the_public_ones_is_401(server: Server) -> None:
    wrong, sent = [], Counter[str]()
    for op in operations(server):
        scope = op.described.get("x-smalt-scope", op.needs.scope)
        answer = op.call(server.http)
        if scope == "public" and op.path in PUBLIC:
            if answer.status_code in (401, 403):
                wrong.append(f"{op.label}: {answer.status_code}, public")
            continue
        sent[f"{op.method} {op.url}"] += 1
        if answer.status_code != 401 or "Bearer" not in answer.headers.get("www-authenticate", ""):
            wrong.append(f"{op.label}: {answer.status_code} {answer.text[:120]}")
    assert not wrong, "\n".join(wrong)
    denied = Counter(e.resource for e in AuditService(server.workspace).list(principal="anonymous", max_results=10_000)
                     if e.outcome == "denied" and e.status == 401)  # fmt: skip
    assert all(denied[request] >= count for request, count in sent.items())
    assert server.http.get("/openapi.json").status_code == 200  # the document itself is public


@pytest.mark.parametrize("family", ["/api/v1/", "/api/2.0/"], ids=["smalt-api", "mlflow"])
def test_a_role_without_the_action_gets_403_and_an_audit_entry(server: Server, family: str) -> None:
    token = IdentityService(server.workspace).issue(Caller(NOBODY, IdentityService(server.workspace).get(NOBODY).id))
    wrong, sent = [], Counter[tuple[str, str]]()
    for op in operations(server):
        if not op.path.startswith(family) or op.described.get("x-smalt-scope", op.needs.scope) == "public":
            continue
        answer = op.call(server.http, token=token.access_token)
        sent[(f"{op.method} {op.url}", op.needs.action.replace("{noun}", "data"))] += 1
        if answer.status_code != 403:
            wrong.append(f"{op.label}: {answer.status_code} {answer.text[:120]}")
    assert sent
    denied = Counter((e.resource, e.action)
                     for e in AuditService(server.workspace).list(principal=NOBODY, max_results=10_000)
                     if e.outcome == "denied" and e.status == 403)  # fmt: skip
    unaudited = [f"{request} ({name}): {denied[request, name]} of {count} denials audited"
                 for (request, name), count in sent.items() if denied[request, name] < count]  # fmt: skip
    refused = f"{len(wrong)} of {sum(sent.values())} operations not refused with 403:\n" + "\n".join(wrong)
    assert not wrong and not unaudited, f"{refused}\n{len(unaudited)} denials not audited:\n" + "\n".join(unaudited)


def test_a_principal_may_read_itself_and_its_tokens_without_a_role(server: Server) -> None:
    token = server.token(NOBODY, NOBODY_PASSWORD)
    assert server.http.get(f"/api/v1/principals/{NOBODY}", token=token).json()["name"] == NOBODY
    assert server.http.get(f"/api/v1/principals/{NOBODY}/tokens", token=token).status_code == 200
    assert server.http.get(f"/api/v1/principals/{OWNER}", token=token).status_code == 403
    assert server.http.get("/api/v1/whoami", token=token).json()["name"] == NOBODY


@pytest.mark.parametrize("family", ["/api/v1/", "/api/2.0/"], ids=["smalt-api", "mlflow"])
def test_a_reader_reads_everything_and_changes_nothing(server: Server, family: str) -> None:
    """Azure's Reader (``*/read``) at the server: refused exactly the operations whose action is no read."""
    IdentityService(server.workspace).create_user("reader", "reader-password-1")
    RoleService(server.workspace).assign("reader", "Reader", "/")
    token = server.token("reader", "reader-password-1")
    wrong = []
    for op in operations(server):
        if not op.path.startswith(family) or op.needs.scope == "public":
            continue
        reads = op.needs.action.lower().endswith("/read")
        answer = op.call(server.http, token=token)
        if reads != (answer.status_code != 403) or answer.status_code in (401, 500):
            wrong.append(f"{op.label} ({op.needs.action}): {answer.status_code} {answer.text[:100]}")
    assert not wrong, "\n".join(wrong)


def test_the_owner_is_never_refused(server: Server) -> None:
    token = server.token(OWNER, OWNER_PASSWORD)
    wrong = []
    for op in operations(server):
        answer = op.call(server.http, token=token)
        if answer.status_code in (401, 403) or answer.status_code >= 500:
            wrong.append(f"{op.label}: {answer.status_code} {answer.text[:120]}")
    assert not wrong, "\n".join(wrong)


# -- the token endpoint -------------------------------------------------------------------------------
def client_credentials(server: Server, client_id: str, secret: str) -> httpx.Response:
    return server.http.post("/api/v1/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                                   "client_secret": secret})  # fmt: skip


def test_client_credentials_give_a_token_that_authenticates(server: Server) -> None:
    made = IdentityService(server.workspace).create_service_principal("ci")
    answer = client_credentials(server, made.client_id, made.client_secret)
    assert answer.status_code == 200, answer.text
    issued = answer.json()
    assert issued["access_token"] and issued["expires_in"] > 0 and issued["token_type"] == "Bearer"
    assert answer.headers["cache-control"] == "no-store"
    who = server.http.get("/api/v1/whoami", token=issued["access_token"]).json()
    assert (who["name"], who["kind"]) == ("ci", "service_principal")
    # As JSON too; and a service principal with no role may do nothing else.
    as_json = server.http.post("/api/v1/token", json={"grant_type": "client_credentials", "client_id": made.client_id,
                                                      "client_secret": made.client_secret})  # fmt: skip
    assert as_json.status_code == 200
    assert server.http.get("/api/v1/principals", token=issued["access_token"]).status_code == 403


def test_a_wrong_secret_is_401_and_audited(server: Server) -> None:
    made = IdentityService(server.workspace).create_service_principal("ci")
    answer = client_credentials(server, made.client_id, "not-the-secret")
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    assert made.client_secret not in answer.text
    entries = AuditService(server.workspace).list(action=TOKEN_ACTION)
    assert [(e.principal, e.outcome, e.status, e.resource) for e in entries] == [
        (made.client_id, "denied", 401, "POST /api/v1/token")
    ]
    # A user's wrong password likewise.
    form = {"grant_type": "password", "username": OWNER, "password": "not-the-password"}
    wrong = server.http.post("/api/v1/token", data=form)
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")


def test_repeated_failures_are_slowed_then_refused(server: Server) -> None:
    made = IdentityService(server.workspace).create_service_principal("ci")
    took = []
    for _ in range(7):
        started = time.monotonic()
        assert client_credentials(server, made.client_id, "not-the-secret").status_code == 401
        took.append(time.monotonic() - started)
    # After 5 failures each attempt waits 0.25 s * 2**(failures - 5): the 7th, 0.5 s.
    assert took[6] >= 0.4, took
    assert took[0] < took[6], took
    for _ in range(20 - 7):
        server.control.failed(f"id:{made.client_id}")
    refused = client_credentials(server, made.client_id, made.client_secret)  # even the right secret
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) > 0
    assert refused.json()["error"] == "temporarily_unavailable"


# -- ways of authenticating ---------------------------------------------------------------------------
def test_basic_auth_with_a_users_name_and_password_works_for_mlflow(server: Server) -> None:
    answer = server.http.get(MLFLOW_SEARCH, auth=(OWNER, OWNER_PASSWORD))
    assert answer.status_code == 200, answer.text
    assert "experiments" in answer.json()
    again = server.http.get(MLFLOW_SEARCH, auth=(OWNER, OWNER_PASSWORD))  # remembered
    assert again.status_code == 200
    refused = server.http.get(MLFLOW_SEARCH, auth=(OWNER, "not-the-password"))
    assert refused.status_code == 401
    assert refused.json()["error_code"] == "UNAUTHENTICATED"  # MLflow's error shape on its paths


def test_the_server_token_works_as_a_bearer_token(workspace: WorkspaceContext, stack: ExitStack,
                                                  portal: BlockingPortal) -> None:  # fmt: skip
    server = serve(workspace, stack, portal, server_token="s3cret")
    assert server.http.get("/api/v1/principals", token="s3cret").status_code == 200
    assert server.http.get(MLFLOW_SEARCH, token="s3cret").status_code == 200
    assert server.http.get("/api/v1/principals", token="s3cret-not").status_code == 401


def test_a_personal_access_token_works_until_revoked(server: Server) -> None:
    identities = IdentityService(server.workspace)
    made = identities.create_token(OWNER, "laptop")
    assert made.token is not None
    assert server.http.get("/api/v1/principals", token=made.token).status_code == 200
    assert server.http.get("/api/v1/principals", token=made.token[:-2] + "xx").status_code == 401
    identities.revoke_token(OWNER, "laptop")
    server.control.forget()
    answer = server.http.get("/api/v1/principals", token=made.token)
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "Unauthenticated"


def test_the_workspace_list_shows_only_what_the_caller_may_read(
    workspace: WorkspaceContext, tmp_path: Path, stack: ExitStack, portal: BlockingPortal
) -> None:
    (tmp_path / "served").mkdir()
    held = WorkspaceService(tmp_path / "served", primary=workspace)
    stack.callback(held.close)
    held.create("other")
    held.create("third")
    IdentityService(workspace).create_user("limited", "limited-password-1")
    RoleService(workspace).assign("limited", "Reader", "/workspaces/other")
    server = serve(workspace, stack, portal, held=held)
    limited = server.token("limited", "limited-password-1")
    listed = server.http.get("/api/v1/workspaces", token=limited)
    assert listed.status_code == 200, listed.text
    assert [w["name"] for w in listed.json()] == ["other"]
    assert server.http.get("/api/v1/workspaces/other", token=limited).status_code == 200
    assert server.http.get("/api/v1/workspaces/third", token=limited).status_code == 403
    assert server.http.get(f"/api/v1/workspaces/{workspace.name}/jobs", token=limited).status_code == 403
    owner = server.http.get("/api/v1/workspaces", token=server.token(OWNER, OWNER_PASSWORD)).json()
    assert [w["name"] for w in owner] == [workspace.name, "other", "third"]


def test_a_body_larger_than_the_limit_is_413(workspace: WorkspaceContext, stack: ExitStack,
                                             portal: BlockingPortal) -> None:  # fmt: skip
    server = serve(workspace, stack, portal, limits=Limits(request_bytes=1024))
    token = server.token(OWNER, OWNER_PASSWORD)
    big = b"{" + b" " * 2048 + b"}"
    headers = {"Content-Type": "application/json"}
    mlflow = server.http.post("/api/2.0/mlflow/runs/create", content=big, headers=headers, token=token)
    assert mlflow.status_code == 413, mlflow.text
    assert mlflow.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    api = server.http.post("/api/v1/workspaces", content=big, headers=headers, token=token)
    assert api.status_code == 413, api.text
    assert "larger than this server takes" in api.json()["error"]["message"]
    small = server.http.post("/api/2.0/mlflow/runs/create", json={"experiment_id": "0"}, token=token)
    assert small.status_code == 200, small.text


def test_a_body_sent_in_chunks_past_the_limit_is_413(workspace: WorkspaceContext, stack: ExitStack,
                                                     portal: BlockingPortal) -> None:  # fmt: skip
    """No Content-Length to refuse it by: the body is cut at the limit, and answered as one too large."""
    server = serve(workspace, stack, portal, limits=Limits(request_bytes=1024))
    token = server.token(OWNER, OWNER_PASSWORD)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b" " * 600

    headers = {"Content-Type": "application/json"}
    for path in ("/api/2.0/mlflow/runs/create", "/api/v1/workspaces"):
        answer = server.http.post(path, content=chunks(), headers=headers, token=token)
        assert answer.status_code == 413, f"{path}: {answer.status_code} {answer.text}"


def test_a_deleted_principals_token_does_not_act_for_a_new_one_of_the_same_name(server: Server) -> None:
    """A signed token names its principal by id and by name: once that principal is deleted, the token
    must not act for another one given the same name later (self-service routes match the name)."""
    identities = IdentityService(server.workspace)
    identities.create_user("alice", "alice-password-1")
    old = server.token("alice", "alice-password-1")
    owner = server.token(OWNER, OWNER_PASSWORD)
    assert server.http.request("DELETE", "/api/v1/principals/alice", token=owner).status_code == 204
    identities.create_user("alice", "alice-password-2")
    RoleService(server.workspace).assign("alice", "Contributor", "/")
    made = server.http.post("/api/v1/principals/alice/tokens", json={"name": "stolen"}, token=old)
    assert made.status_code in (401, 403), f"{made.status_code} {made.text}"
    assert server.http.get("/api/v1/whoami", token=old).status_code == 401


def test_what_no_route_serves_answers_in_its_clients_shape() -> None:
    """A path or method no route serves is a 404 (405) in smalt's error shape under /api/v1 (the
    SDK rebuilds a NotFoundError) and in MLflow's elsewhere, never FastAPI's {"detail": ...}."""
    import tempfile

    import anyio

    from smalt.errors import NotFoundError, from_wire

    workspace = open_workspace(Path(tempfile.mkdtemp()) / "ws")
    try:
        app = create_app(workspace)

        async def calls() -> list[httpx.Response]:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://smalt") as client:
                return [await client.request(method, path) for method, path in (
                    ("GET", "/api/v1/no-such-thing"), ("DELETE", "/api/v1/workspaces"),
                    ("GET", "/api/2.0/mlflow/no-such-route"), ("PUT", "/api/2.0/mlflow/runs/get"),
                )]  # fmt: skip

        api_missing, api_method, mlflow_missing, mlflow_method = anyio.run(calls)
    finally:
        workspace.close()
    assert api_missing.status_code == 404 and "detail" not in api_missing.json()
    assert isinstance(from_wire(api_missing.json()), NotFoundError)
    assert api_method.status_code == 405 and api_method.json()["error"]["code"] == "InvalidState"
    assert mlflow_missing.status_code == 404
    body = mlflow_missing.json()
    assert body["error_code"] == "ENDPOINT_NOT_FOUND" and "no-such-route" in body["message"]
    assert mlflow_method.status_code == 405 and mlflow_method.json()["error_code"] == "ENDPOINT_NOT_FOUND"
