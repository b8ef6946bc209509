"""Who calls, and whether they may: authentication, authorization and auditing for every request.

- ``AccessMiddleware`` (pure ASGI, in front of everything) gives each request an id, bounds its
  body, and authenticates it: a bearer token (a signed access token, a personal access token, or
  the server's own ``SMALT_TOKEN``) or HTTP Basic with a user's or service principal's name (or
  client id) and secret, as MLflow clients send ``MLFLOW_TRACKING_USERNAME``/``_PASSWORD``. Without
  valid credentials a request is answered 401, except on the few public paths (``PUBLIC``). With
  authentication off (a loopback server with no identities and no token) every request acts for
  the machine's user, named by ``Smalt-Caller`` when the client says.
- ``requires(action)`` is the dependency every route declares (``check_declared`` refuses to build
  an app with a route that has none): the action's Azure string, with the route's path values put
  in (``workspaces/{noun}/read``), checked at the route's scope: its ``{workspace}``, the server's
  own workspace for the routes that name none, or the server (``scope="server"``); none at all for
  the few public routes (``scope="public"``). Denied: 403.
- After the answer, the middleware appends the audit entry: every change (any method but GET and
  HEAD on a route whose action is audited here) and every denial (401 and 403).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from smalt.entities.identity import PRINCIPAL_NAME
from smalt.entities.role import SERVER_SCOPE, action, matches
from smalt.errors import AuthenticationError, InvalidSpecError, SmaltError
from smalt.services import audit
from smalt.services.audit import AuditService
from smalt.services.identities import PAT_PREFIX, Caller, IdentityService
from smalt.services.roles import Authorizer
from smalt.services.workspace import WorkspaceContext, caller, origin, run_scope

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Where smalt's own REST API lives (MLflow's protocol keeps its own paths).
API_PREFIX = "/api/v1/"
#: Answered without credentials: liveness, the token endpoint, the API's own description, and the
#: page MLflow's "View run" links open (it shows nothing of the workspace).
PUBLIC = frozenset({"/health", "/", "/api/v1/token", "/openapi.json", "/docs", "/docs/oauth2-redirect"})
#: Large bodies are the bytes of uploads and artifacts; every other request's body is small.
_BULK = ("/uploads/blobs/", "/api/2.0/mlflow-artifacts/artifacts/")
_log = logging.getLogger("smalt.server")
#: What a job's own token may do (its server is the job's, on 127.0.0.1, and ends with it): track its
#: run and the runs nested under it (services/tracking.py checks which run), and read and register
#: models (an input may be one, ``models:/name/1``).
JOB_ACTIONS = tuple(action(a) for a in (
    "workspaces/experiments/read", "workspaces/experiments/write", "workspaces/experiments/runs/*",
    "workspaces/models/read", "workspaces/models/write",
))  # fmt: skip


@dataclass
class Limits:
    request_bytes: int = 64 << 20
    upload_bytes: int = 50 << 30


class AccessControl:
    """A server's authentication state: its identities, the authorizer, and what it remembers of
    credentials it has checked (a signed token until it expires, a password for a minute)."""

    BASIC_TTL_S = 60.0

    def __init__(self, workspace: WorkspaceContext, *, enabled: bool, server_token: str | None = None,
                 limits: Limits | None = None, job: str | None = None) -> None:  # fmt: skip
        """``job``: the server is that job's own (its supervisor starts it), and ``server_token`` the
        job's token, scoped to its run (``JOB_ACTIONS``, ``services.workspace.run_scope``)."""
        self.workspace = workspace
        self.job = job
        self.enabled = enabled
        self.identities = IdentityService(workspace)
        self.authorizer = Authorizer(workspace)
        self.audit = AuditService(workspace)
        self.limits = limits or Limits()
        self._server_token = server_token
        self._known: dict[str, tuple[Caller, float]] = {}  # credential digest -> (caller, until, epoch s)
        self._failures: dict[str, list[float]] = {}

    # -- authentication --------------------------------------------------------------------------
    def authenticate(self, header: str) -> Caller | None:
        """The caller an ``Authorization`` header names, or None. Runs in a worker thread on a
        miss: a password check is slow on purpose."""
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if not value:
            return None
        if scheme.lower() == "bearer":
            if self._server_token is not None and _same(value, self._server_token):
                return self._server_caller()
            if value.startswith(PAT_PREFIX):
                found = self.identities.check_pat(value)
                return self._remember(value, found[0], min(found[1].timestamp(), time.time() + 30)) if found else None
            jwt_found = self.identities.check_jwt(value)
            # A signed token of a principal deleted since is refused: checked again every minute.
            if jwt_found is None or jwt_found[0].id is None or not self.identities.exists(jwt_found[0].id):
                return None
            return self._remember(value, jwt_found[0], min(jwt_found[1], time.time() + 60))
        if scheme.lower() == "basic":
            try:
                name, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            if self._server_token is not None and _same(secret, self._server_token):
                return self._server_caller()
            checked = self.identities.check_secret(name, secret)
            return self._remember(header, checked, time.time() + self.BASIC_TTL_S) if checked else None
        return None

    def _server_caller(self) -> Caller:
        """Who the server's own token acts for: the machine's user, or a job scoped to its run."""
        return Caller(self.workspace.owner, None, "job" if self.job else "user")

    def remembered(self, header: str) -> Caller | None:
        """The caller of a credential checked before and still valid: no store, no thread."""
        scheme, _, value = header.strip().partition(" ")
        key = _key(value.strip() if scheme.lower() == "bearer" else header.strip())
        found = self._known.get(key)
        if found is None:
            return None
        if found[1] <= time.time():
            self._known.pop(key, None)
            return None
        return found[0]

    def _remember(self, credential: str, who: Caller, until: float) -> Caller:
        if len(self._known) > 50_000:
            self._known.clear()
        self._known[_key(credential)] = (who, until)
        return who

    def forget(self) -> None:
        """Forget every credential and grant checked: a principal, token or role changed."""
        self._known.clear()
        self.authorizer.forget()

    # -- repeated failures at the token endpoint ---------------------------------------------------
    def failures(self, *keys: str) -> int:
        """Failures in the last 15 minutes for any of ``keys`` (a client id, an address)."""
        horizon = time.monotonic() - 900
        counts = []
        for key in keys:
            kept = [t for t in self._failures.get(key, []) if t > horizon]
            self._failures[key] = kept
            counts.append(len(kept))
        return max(counts, default=0)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        for key in keys:
            self._failures.setdefault(key, []).append(now)


def _key(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()


def _same(given: str, expected: str) -> bool:
    import hmac

    return hmac.compare_digest(given.encode(), expected.encode())


# -- declaring and checking actions ---------------------------------------------------------------
class Requires:
    """The dependency ``requires`` makes; ``action`` is the full string, path values still in braces."""

    def __init__(self, template: str, scope: str, audited: bool, self_service: bool) -> None:
        self.action, self.scope, self.audited, self.self_service = action(template), scope, audited, self_service

    async def __call__(self, request: Request) -> None:
        scope = request.scope
        who: Caller | None = scope.get("smalt.caller")
        params = request.path_params
        name = self.action
        if "{" in name:  # an asset route's ``{noun}`` is Azure's segment already (data, models...)
            name = name.format_map(params)
        target = _scope_of(request, self.scope)
        workspace = params.get("workspace") or (None if self.scope == "server" else request.app.state.workspace.name)
        scope["smalt.action"] = (name, self.audited, workspace)
        if who is not None and who.kind == "job" and self.scope != "public":
            if not any(matches(pattern, name) for pattern in JOB_ACTIONS):
                from smalt.errors import PermissionDeniedError

                raise PermissionDeniedError(f"A job's token may not do {name}: it may track its own run and "
                                            "read and register models.")  # fmt: skip
            return
        if self.scope == "public" or who is None or who.id is None:
            return  # a public route; authentication off, or the server's own token: the machine's user
        if self.self_service and params.get("name") in (who.name, who.id):
            return  # a principal's own tokens and profile
        control: AccessControl = request.app.state.access
        # From memory inline (about a microsecond); a worker thread only when the store must be read.
        allowed = control.authorizer.known(who.id, name, target)
        if allowed is None or (self.scope == "any" and not allowed):
            if self.scope == "any":
                allowed = await run_in_threadpool(_anywhere, control, who.id, name, request)
            else:
                allowed = await run_in_threadpool(control.authorizer.allowed, who.id, name, target)
        if not allowed:
            from smalt.errors import PermissionDeniedError

            where = "the server" if target == SERVER_SCOPE else f"workspace '{target.removeprefix('/workspaces/')}'"
            raise PermissionDeniedError(
                f"'{who.name}' may not do {name} on {where}.",
                hint="ask an Owner for a role that grants it (smalt role assignment create)",
            )


def requires(template: str, *, scope: str = "workspace", audited: bool = True, self_service: bool = False) -> Any:
    """The dependency a route declares its action with, e.g. ``dependencies=[requires("workspaces/jobs/read")]``
    (short strings are under ``Microsoft.MachineLearningServices/``). ``scope``: ``workspace`` (the
    route's, else the server's own), ``server``, or ``any`` (granted at the server or at any
    workspace: the route shows only what the caller may see) or ``public`` (no check: what answers
    without credentials, ``PUBLIC``). ``audited=False``: the route's
    changes are not audited here (its service audits them in its own transaction, or they are
    tracking's data plane). ``self_service``: a principal may always act on itself (``{name}``)."""
    return Depends(Requires(template, scope, audited, self_service))


def public() -> Any:
    """The declaration of a route that checks no action (its path may still need a credential)."""
    return requires("public", scope="public", audited=False)


def _scope_of(request: Request, kind: str) -> str:
    if kind in ("server", "any"):
        return SERVER_SCOPE
    workspace = request.path_params.get("workspace") or request.app.state.workspace.name
    return f"/workspaces/{workspace}"


def _anywhere(control: AccessControl, principal_id: str, name: str, request: Request) -> bool:
    if control.authorizer.allowed(principal_id, name, SERVER_SCOPE):
        return True
    return any(control.authorizer.allowed(principal_id, name, f"/workspaces/{w.name}")
               for w in request.app.state.workspaces.list())  # fmt: skip


def may_see(request: Request, workspace: str, template: str = "workspaces/read") -> bool:
    """Whether the caller may do ``template`` in ``workspace`` (a list that shows only that)."""
    who: Caller | None = request.scope.get("smalt.caller")
    if who is None or who.id is None:
        return True
    control: AccessControl = request.app.state.access
    return control.authorizer.allowed(who.id, action(template), f"/workspaces/{workspace}")


def declared(route: APIRoute) -> Requires | None:
    found = [d.call for d in route.dependant.dependencies if isinstance(d.call, Requires)]
    return found[0] if len(found) == 1 else None


def routes_of(app: FastAPI) -> Iterator[APIRoute]:
    """Every route of ``app``, those of included routers too (FastAPI keeps an included router
    whole in ``app.routes`` and resolves its routes, prefixes and dependencies when asked)."""
    for route in app.routes:
        if isinstance(route, APIRoute):
            yield route
        elif callable(resolve := getattr(route, "effective_route_contexts", None)):
            yield from resolve()


def check_declared(app: FastAPI) -> None:
    """Refuse an app with a route that declares no action (or more than one): nothing may be
    reachable without one. Adds each route's action to the OpenAPI document (``x-smalt-action``)."""
    routes = list(routes_of(app))
    missing = [f"{sorted(r.methods or ())} {r.path}" for r in routes if declared(r) is None]
    if missing:
        raise RuntimeError("routes without exactly one declared action (server/access.requires): " + ", ".join(missing))
    original = app.openapi

    def described() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        for route in routes:
            if route.include_in_schema and (needs := declared(route)) is not None:
                for method in route.methods or ():
                    operation = schema.get("paths", {}).get(route.path_format, {}).get(method.lower())
                    if operation is not None:
                        operation["x-smalt-action"] = needs.action
                        operation["x-smalt-scope"] = needs.scope
        return schema

    app.openapi = described  # type: ignore[method-assign]


# -- the middleware ----------------------------------------------------------------------------------
class AccessMiddleware:
    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], control: AccessControl) -> None:
        self.app, self.control = app, control

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = _request_id(headers.get("x-request-id"))
        client = scope.get("client")
        address = f"{client[0]}:{client[1]}" if client else "unknown"
        origin.set((request_id, address))
        path: str = scope["path"]
        too_big = self._too_big(path, headers)
        if too_big is not None:
            await _answer(send, path, 413, InvalidSpecError.one(too_big, "body"), request_id)
            return
        exceeded: list[str] = []  # why, once a body sent in chunks went past the limit
        receive = self._bounded(path, receive, exceeded)
        said = headers.get("smalt-caller")
        if not self.control.enabled and said is not None and not PRINCIPAL_NAME.match(said):
            message = "Smalt-Caller must be a user name (letters, digits, '.', '_', '@', '+', '-')"
            await _answer(send, path, 400, InvalidSpecError.one(message, "Smalt-Caller"), request_id)
            return
        who = await self._who(headers, path)
        if who is None:
            message = ("A valid credential is required: a bearer token (SMALT_TOKEN, a personal access token, "
                       "or one from the token endpoint) or a user name and password.")  # fmt: skip
            hint = "smalt login; or set SMALT_TOKEN, or AZURE_CLIENT_ID, _SECRET and _TENANT_ID for a service principal"
            refused = AuthenticationError(message, hint=hint)
            await _answer(send, path, 401, refused, request_id,
                          extra=[(b"www-authenticate", b'Bearer realm="smalt", Basic realm="smalt"')])  # fmt: skip
            await self._audit(Caller("anonymous", None), "authenticate", path, 401, None, scope["method"])
            return
        scope["smalt.caller"] = who
        caller.set(who.name)
        if who.kind == "job":
            run_scope.set(self.control.job)
        status = 500

        async def sent(message: Message) -> None:
            nonlocal status
            if exceeded:  # whatever the app made of a body cut short, the answer is 413
                if message["type"] == "http.response.start":
                    status = 413
                    await _answer(send, path, 413, InvalidSpecError.one(exceeded[0], "body"), request_id)
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            found = scope.get("smalt.action")
            if found is not None:
                name, audited, workspace = found
                if status == 403 or (audited and scope["method"] not in ("GET", "HEAD")):
                    await self._audit(who, name, path, status, workspace, scope["method"])

    async def _who(self, headers: dict[str, str], path: str) -> Caller | None:
        control = self.control
        if path in PUBLIC or not control.enabled:
            if control.enabled:
                return Caller("anonymous", "-")  # a public path needs no principal; no role grants "-"
            # Authentication off: the client says whom it acts for (checked before), else the machine's user.
            return Caller(headers.get("smalt-caller") or control.workspace.owner, None)
        header = headers.get("authorization")
        if not header:
            return None
        found = control.remembered(header)
        if found is not None:
            return found
        try:
            return await run_in_threadpool(control.authenticate, header)
        except SmaltError:
            return None

    def _limit(self, path: str) -> int:
        limits = self.control.limits
        return limits.upload_bytes if any(part in path for part in _BULK) else limits.request_bytes

    def _too_big(self, path: str, headers: dict[str, str]) -> str | None:
        limit = self._limit(path)
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return f"The request's body ({int(length):,} bytes) is larger than this server takes ({limit:,} bytes)."
        return None

    def _bounded(self, path: str, receive: Receive, exceeded: list[str]) -> Receive:
        """``receive``, stopping a body sent in chunks (no Content-Length) at the limit: the app is
        told the client left, and ``exceeded`` says why (the middleware then answers 413)."""
        limit = self._limit(path)
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded.append(f"The request's body is larger than this server takes ({limit:,} bytes).")
                    return {"type": "http.disconnect"}
            return message

        return bounded

    async def _audit(self, who: Caller, name: str, path: str, status: int, workspace: str | None, method: str) -> None:
        outcome = "denied" if status in (401, 403) else "succeeded" if status < 400 else "failed"
        row = audit.entry(self.control.workspace, name, f"{method} {path}", outcome=outcome, status=status,
                          workspace=workspace, principal=who.name)  # fmt: skip
        try:
            await run_in_threadpool(self.control.audit.record, row)
        except Exception:  # an audit that cannot be written is logged; the answer went out already
            _log.exception("could not write the audit entry %s", row)


def _request_id(given: str | None) -> str:
    if given and len(given) <= 64 and all(c.isalnum() or c in "-_." for c in given):
        return given
    return uuid.uuid4().hex


async def _answer(send: Send, path: str, status: int, error: SmaltError, request_id: str,
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:  # fmt: skip
    """``error`` in the shape the path's clients read: smalt's under /api/v1 (``errors.to_wire``),
    MLflow's elsewhere."""
    from smalt.errors import to_wire

    if path.startswith(API_PREFIX):
        body: dict[str, Any] = to_wire(error)[1]
    else:
        code = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}.get(status, "INVALID_PARAMETER_VALUE")
        body = {"error_code": code, "message": error.message}
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
               (b"x-request-id", request_id.encode()), *(extra or [])]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
