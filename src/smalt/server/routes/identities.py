"""Identities over REST: the token endpoint (``/api/v1/token``), users, service principals and their
personal access tokens (``/api/v1/principals``), and who the caller is (``/api/v1/whoami``).

The token endpoint takes OAuth 2's client-credentials grant (``client_id``, ``client_secret``) and
the password grant (``username``, ``password``), form-encoded or as JSON, and answers as OAuth 2
does (``access_token``, ``token_type``, ``expires_in``; an error as ``error`` and
``error_description``). Repeated failures from one client id or address are answered ever more
slowly: after 5 in 15 minutes each waits twice as long as the one before (up to 8 s), and after 20
the endpoint answers 429 until the window has passed.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from smalt.server.access import AccessControl, requires
from smalt.services.identities import WRITE, Caller

router = APIRouter(tags=["identities"])

PrincipalPath = Annotated[str, Path(max_length=128)]
_READ = "Microsoft.Authorization/principals/read"
_DELETE = "Microsoft.Authorization/principals/delete"
_TOKENS_READ = "Microsoft.Authorization/principals/tokens/read"
_TOKENS_WRITE = "Microsoft.Authorization/principals/tokens/write"
_TOKENS_DELETE = "Microsoft.Authorization/principals/tokens/delete"
_SLOW_AFTER, _REFUSE_AFTER = 5, 20


def _control(request: Request) -> AccessControl:
    control: AccessControl = request.app.state.access
    return control


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


@router.post("/token", dependencies=[requires("public", scope="public", audited=False)])
async def token(request: Request) -> JSONResponse:
    """An access token for a service principal's client id and secret, or a user's name and password."""
    raw = await request.body()
    if len(raw) > 8192:
        return _oauth_error(400, "invalid_request", "The request is too large.")
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            decoded = json.loads(raw)
            form = {str(k): str(v) for k, v in decoded.items()} if isinstance(decoded, dict) else {}
        else:
            form = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode(), keep_blank_values=True).items()}
    except (ValueError, UnicodeDecodeError):
        return _oauth_error(400, "invalid_request", "The body is neither form-encoded nor JSON.")
    grant = form.get("grant_type", "")
    if grant == "client_credentials":
        name, secret = form.get("client_id", ""), form.get("client_secret", "")
    elif grant == "password":
        name, secret = form.get("username", ""), form.get("password", "")
    else:
        return _oauth_error(400, "unsupported_grant_type", "grant_type must be client_credentials or password.")
    if not name or not secret or len(name) > 128 or len(secret) > 1024:
        return _oauth_error(400, "invalid_request", "Both the client id (or user name) and its secret are needed.")
    control = _control(request)
    client = request.client.host if request.client else "unknown"
    keys = (f"id:{name}", f"ip:{client}")
    failures = control.failures(*keys)
    if failures >= _REFUSE_AFTER:
        return JSONResponse({"error": "temporarily_unavailable",
                             "error_description": "Too many failed attempts; try again in 15 minutes."},
                            status_code=429, headers={"Retry-After": "900"})  # fmt: skip
    if failures >= _SLOW_AFTER:
        await asyncio.sleep(min(8.0, 0.25 * 2 ** (failures - _SLOW_AFTER)))
    found = await run_in_threadpool(control.identities.check_secret, name, secret)
    if found is None:
        control.failed(*keys)
        from smalt.services import audit

        row = audit.entry(control.workspace, "Microsoft.Authorization/token/action", "POST /api/v1/token",
                          outcome="denied", status=401, principal=name[:128])  # fmt: skip
        await run_in_threadpool(control.audit.record, row)
        return _oauth_error(401, "invalid_client", "The client id (or user name) or its secret is wrong.")
    issued = control.identities.issue(found)
    return JSONResponse(issued.to_dict(), headers={"Cache-Control": "no-store"})


@router.get("/whoami", dependencies=[requires("public", scope="public", audited=False)])
def whoami(request: Request) -> dict[str, Any]:
    """The caller: its name and kind, and its role assignments."""
    who: Caller = request.scope["smalt.caller"]
    from smalt.services.roles import RoleService

    assignments = [] if who.id is None else RoleService(_control(request).workspace).assignments(assignee=who.id)
    return {"name": who.name, "kind": who.kind, "id": who.id,
            "authenticated": _control(request).enabled, "assignments": [a.to_dict() for a in assignments]}  # fmt: skip


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class NewServicePrincipal(BaseModel):
    name: str = Field(min_length=1, max_length=128)


class NewSecret(BaseModel):
    password: str | None = Field(None, max_length=1024)


class NewToken(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    expires_in_days: int = Field(30, ge=1, le=366)


@router.post("/users", status_code=201, dependencies=[requires(WRITE, scope="server", audited=False)])
def create_user(request: Request, body: NewUser) -> dict[str, Any]:
    control = _control(request)
    return control.identities.create_user(body.name, body.password).to_dict()


@router.post("/service-principals", status_code=201, dependencies=[requires(WRITE, scope="server", audited=False)])
def create_service_principal(request: Request, body: NewServicePrincipal) -> dict[str, Any]:
    """The service principal's client id, secret and tenant: shown in this answer only."""
    return _control(request).identities.create_service_principal(body.name).to_dict()


@router.get("/principals", dependencies=[requires(_READ, scope="server")])
def list_principals(request: Request) -> list[dict[str, Any]]:
    return [p.to_dict() for p in _control(request).identities.list()]


@router.get("/principals/{name}", dependencies=[requires(_READ, scope="server", self_service=True)])
def get_principal(request: Request, name: PrincipalPath) -> dict[str, Any]:
    return _control(request).identities.get(name).to_dict()


@router.delete("/principals/{name}", status_code=204, dependencies=[requires(_DELETE, scope="server", audited=False)])
def delete_principal(request: Request, name: PrincipalPath) -> None:
    control = _control(request)
    control.identities.delete(name)
    control.forget()


@router.post("/principals/{name}/reset-secret",
             dependencies=[requires(WRITE, scope="server", audited=False, self_service=True)])  # fmt: skip
def reset_secret(request: Request, name: PrincipalPath, body: NewSecret) -> dict[str, Any]:
    """A user's new password (given), or a service principal's new secret (answered, once)."""
    control = _control(request)
    made = control.identities.reset_secret(name, body.password)
    control.forget()
    return made.to_dict() if made is not None else {}


@router.post("/principals/{name}/tokens", status_code=201,
             dependencies=[requires(_TOKENS_WRITE, scope="server", audited=False, self_service=True)])  # fmt: skip
def create_token(request: Request, name: PrincipalPath, body: NewToken) -> dict[str, Any]:
    """A personal access token; its secret is in this answer only."""
    return _control(request).identities.create_token(name, body.name, expires_in_days=body.expires_in_days).to_dict()


@router.get("/principals/{name}/tokens", dependencies=[requires(_TOKENS_READ, scope="server", self_service=True)])
def list_tokens(request: Request, name: PrincipalPath) -> list[dict[str, Any]]:
    return [t.to_dict() for t in _control(request).identities.list_tokens(name)]


@router.delete("/principals/{name}/tokens/{token}", status_code=204,
               dependencies=[requires(_TOKENS_DELETE, scope="server", audited=False, self_service=True)])  # fmt: skip
def revoke_token(request: Request, name: PrincipalPath, token: Annotated[str, Path(max_length=64)]) -> None:
    control = _control(request)
    control.identities.revoke_token(name, token)
    control.forget()
