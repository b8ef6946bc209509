"""Roles and role assignments over REST: ``/api/v1/roles`` (Azure's role-definition JSON, as
``az role definition create --role-definition`` reads it) and ``/api/v1/role-assignments``.

Assigning is checked at the scope assigned: an Owner of one workspace may give roles in it, and
only there."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import BaseModel, Field

from smalt.entities.role import SERVER_SCOPE, RoleDefinition, scope_of
from smalt.errors import InvalidSpecError, NotFoundError, PermissionDeniedError
from smalt.server.access import AccessControl, requires
from smalt.services.identities import Caller
from smalt.services.roles import ASSIGN, ROLE_DELETE, ROLE_WRITE, UNASSIGN, RoleService

router = APIRouter(tags=["roles"])

_ROLES_READ = "Microsoft.Authorization/roleDefinitions/read"
_ASSIGNMENTS_READ = "Microsoft.Authorization/roleAssignments/read"
RoleNamePath = Annotated[str, Path(max_length=128)]


def _control(request: Request) -> AccessControl:
    control: AccessControl = request.app.state.access
    return control


def _service(request: Request) -> RoleService:
    return RoleService(_control(request).workspace)


def _check_at(request: Request, name: str, scope: str) -> None:
    """The caller may do ``name`` at ``scope`` (a route that can only know its scope from the body)."""
    who: Caller = request.scope["smalt.caller"]
    if who.id is None or _control(request).authorizer.allowed(who.id, name, scope):
        return
    request.scope["smalt.action"] = (name, False, scope.removeprefix("/workspaces/") if scope != SERVER_SCOPE else None)
    raise PermissionDeniedError(f"'{who.name}' may not do {name} at {scope}.",
                                hint="ask an Owner of that scope (smalt role assignment create)")  # fmt: skip


@router.get("/roles", dependencies=[requires(_ROLES_READ, scope="any")])
def list_roles(request: Request) -> list[dict[str, Any]]:
    return [r.to_azure() for r in _service(request).list_roles()]


@router.get("/roles/{name}", dependencies=[requires(_ROLES_READ, scope="any")])
def get_role(request: Request, name: RoleNamePath) -> dict[str, Any]:
    return _service(request).get_role(name).to_azure()


@router.post("/roles", status_code=201, dependencies=[requires(ROLE_WRITE, scope="server", audited=False)])
def create_role(request: Request, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """A custom role from Azure's JSON (``Name``, ``Actions``, ``NotActions``, ``AssignableScopes``...)."""
    made = _service(request).create_or_update_role(RoleDefinition(**body)).to_azure()
    _control(request).forget()
    return made


@router.delete("/roles/{name}", status_code=204, dependencies=[requires(ROLE_DELETE, scope="server", audited=False)])
def delete_role(request: Request, name: RoleNamePath) -> None:
    _service(request).delete_role(name)
    _control(request).forget()


class NewAssignment(BaseModel):
    assignee: str = Field(min_length=1, max_length=128)
    role: str = Field(min_length=1, max_length=128)
    scope: str = Field(SERVER_SCOPE, min_length=1, max_length=512)


@router.get("/role-assignments", dependencies=[requires(_ASSIGNMENTS_READ, scope="any")])
def list_assignments(
    request: Request,
    assignee: Annotated[str | None, Query(max_length=128)] = None,
    role: Annotated[str | None, Query(max_length=128)] = None,
    scope: Annotated[str | None, Query(max_length=512)] = None,
) -> list[dict[str, Any]]:
    """Assignments, by assignee, role or scope; only those at scopes the caller may read them at."""
    who: Caller = request.scope["smalt.caller"]
    control = _control(request)
    try:
        found = _service(request).assignments(assignee=assignee, role=role, scope=scope)
    except ValueError as exc:
        raise InvalidSpecError.one(str(exc), "scope") from None
    return [a.to_dict() for a in found
            if who.id is None or control.authorizer.allowed(who.id, _ASSIGNMENTS_READ, a.scope)]  # fmt: skip


@router.post("/role-assignments", status_code=201, dependencies=[requires(ASSIGN, scope="any", audited=False)])
def create_assignment(request: Request, body: NewAssignment) -> dict[str, Any]:
    try:
        scope = scope_of(body.scope)
    except ValueError as exc:
        raise InvalidSpecError.one(str(exc), "scope") from None
    _check_at(request, ASSIGN, scope)
    made = _service(request).assign(body.assignee, body.role, scope).to_dict()
    _control(request).forget()
    return made


@router.delete("/role-assignments/{assignment}", status_code=204,
               dependencies=[requires(UNASSIGN, scope="any", audited=False)])  # fmt: skip
def delete_assignment(request: Request, assignment: Annotated[str, Path(max_length=64)]) -> None:
    service = _service(request)
    found = next((a for a in service.assignments() if a.id == assignment), None)
    if found is None:
        raise NotFoundError(f"Role assignment '{assignment}' not found.", hint="smalt role assignment list")
    _check_at(request, UNASSIGN, found.scope)
    service.unassign(assignment)
    _control(request).forget()
