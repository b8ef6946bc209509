"""Roles, role assignments, and the check every request of a server passes: may this principal do
this action at this scope? Built-in roles are Azure's (``entities.role.BUILT_IN``); custom ones are
kept in the server's own workspace's store, as Azure's JSON writes them.

The check reads what it needs once per principal and keeps it (``Authorizer``); a change to roles
or assignments made through this process forgets what was kept at once, one made by another
process (``smalt role assignment create`` on the server's folder) within ``Authorizer.TTL_S``.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from smalt.entities.role import BUILT_IN, SERVER_SCOPE, RoleAssignment, RoleDefinition, covers, scope_of
from smalt.errors import AlreadyExistsError, InvalidSpecError, InvalidStateError, NotFoundError
from smalt.services import audit
from smalt.services.workspace import WorkspaceContext
from smalt.store.access import AssignmentRecord

ROLE_WRITE, ROLE_DELETE = (
    "Microsoft.Authorization/roleDefinitions/write",
    "Microsoft.Authorization/roleDefinitions/delete",
)
ASSIGN, UNASSIGN = "Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleAssignments/delete"


class RoleService:
    """Roles and their assignments on the server whose own workspace is ``workspace``."""

    def __init__(self, workspace: WorkspaceContext) -> None:
        self._ws = workspace

    # -- roles ----------------------------------------------------------------------------------
    def list_roles(self) -> list[RoleDefinition]:
        with self._ws.store.transaction() as tx:
            custom = [RoleDefinition.model_validate(r.spec) for r in tx.access.roles()]
        return [*BUILT_IN.values(), *custom]

    def get_role(self, name: str) -> RoleDefinition:
        role = BUILT_IN.get(name.lower())
        if role is not None:
            return role
        with self._ws.store.transaction() as tx:
            record = tx.access.role(name)
        if record is None:
            names = [r.name for r in self.list_roles()]
            raise NotFoundError(f"Role '{name}' not found. Roles: {', '.join(names)}.", hint="smalt role list")
        return RoleDefinition.model_validate(record.spec)

    def create_or_update_role(self, role: RoleDefinition) -> RoleDefinition:
        if role.name.lower() in BUILT_IN:
            raise InvalidStateError(f"'{role.name}' is a built-in role and cannot be changed.",
                                    hint="give the custom role another Name")  # fmt: skip
        role = role.model_copy(update={"is_custom": True, "id": role.id or str(uuid.uuid4())})
        with self._ws.store.transaction(write=True) as tx:
            existing = tx.access.role(role.name)
            if existing is not None:
                role = role.model_copy(update={"id": existing.spec.get("Id", role.id)})
            tx.access.put_role(role.name, role.to_azure(), datetime.now(UTC), self._ws.user)
            audit.append(tx, audit.entry(self._ws, ROLE_WRITE, f"/roleDefinitions/{role.name}"))
        return role

    def delete_role(self, name: str) -> None:
        if name.lower() in BUILT_IN:
            raise InvalidStateError(f"'{name}' is a built-in role and cannot be deleted.")
        with self._ws.store.transaction(write=True) as tx:
            used = tx.access.assignments(role=name)
            if used:
                raise InvalidStateError(
                    f"Role '{name}' is assigned {len(used)} time(s); it cannot be deleted while it is.",
                    hint=f"smalt role assignment list --role '{name}', then delete those",
                )
            if not tx.access.delete_role(name):
                raise NotFoundError(f"Role '{name}' not found.", hint="smalt role list")
            audit.append(tx, audit.entry(self._ws, ROLE_DELETE, f"/roleDefinitions/{name}"))

    # -- assignments ------------------------------------------------------------------------------
    def assign(self, assignee: str, role: str, scope: str = SERVER_SCOPE) -> RoleAssignment:
        """Give ``role`` to the principal ``assignee`` (a name or client id) at ``scope``."""
        definition = self.get_role(role)
        try:
            scope = scope_of(scope)
        except ValueError as exc:
            raise InvalidSpecError.one(str(exc), "scope") from None
        if not any(covers(allowed, scope) for allowed in definition.assignable_scopes):
            raise InvalidSpecError.one(f"Role '{definition.name}' can be assigned only at "
                                       f"{', '.join(definition.assignable_scopes)}.", "scope")  # fmt: skip
        with self._ws.store.transaction(write=True) as tx:
            principal = tx.access.principal(name=assignee) or tx.access.principal(id=assignee)
            if principal is None:
                raise NotFoundError(
                    f"Principal '{assignee}' not found.", hint="smalt user list; smalt service-principal list"
                )
            held = tx.access.assignments(principal_id=principal.id)
            # Azure's names ignore case: /workspaces/WS1 is /workspaces/ws1.
            if any(a.role == definition.name and a.scope.lower() == scope.lower() for a in held):
                raise AlreadyExistsError(f"'{principal.name}' has role '{definition.name}' at {scope} already.")
            record = AssignmentRecord(str(uuid.uuid4()), principal.id, definition.name, scope, datetime.now(UTC),
                                      self._ws.user)  # fmt: skip
            tx.access.add_assignment(record)
            workspace = scope.removeprefix("/workspaces/") if scope != SERVER_SCOPE else None
            audit.append(tx, audit.entry(self._ws, ASSIGN, f"/roleAssignments/{record.id}", workspace=workspace))
        return RoleAssignment(id=record.id, principal=principal.name, role=record.role, scope=scope,
                              created_at=record.created_at, created_by=record.created_by)  # fmt: skip

    def assignments(self, *, assignee: str | None = None, role: str | None = None,
                    scope: str | None = None) -> list[RoleAssignment]:  # fmt: skip
        with self._ws.store.transaction() as tx:
            names = {p.id: p.name for p in tx.access.principals()}
            principal_id = None
            if assignee is not None:
                principal_id = next((i for i, n in names.items() if assignee in (n, i)), "-")
            records = tx.access.assignments(principal_id=principal_id, role=role)
        wanted = scope_of(scope) if scope is not None else None
        return [RoleAssignment(id=r.id, principal=names.get(r.principal_id, r.principal_id), role=r.role, scope=r.scope,
                               created_at=r.created_at, created_by=r.created_by)
                for r in records if wanted is None or r.scope == wanted]  # fmt: skip

    def unassign(self, assignment_id: str) -> None:
        with self._ws.store.transaction(write=True) as tx:
            if not tx.access.delete_assignment(assignment_id):
                raise NotFoundError(f"Role assignment '{assignment_id}' not found.", hint="smalt role assignment list")
            audit.append(tx, audit.entry(self._ws, UNASSIGN, f"/roleAssignments/{assignment_id}"))


class Authorizer:
    """Whether a principal may do an action at a scope, answered from memory after the first ask."""

    TTL_S = 5.0

    def __init__(self, workspace: WorkspaceContext) -> None:
        self._ws = workspace
        self._grants: dict[str, tuple[float, list[tuple[str, RoleDefinition]]]] = {}
        self._answers: dict[tuple[str, str, str], bool] = {}

    def forget(self) -> None:
        """Drop what was kept: roles or assignments changed."""
        self._grants.clear()
        self._answers.clear()

    def known(self, principal_id: str, action: str, scope: str) -> bool | None:
        """The answer from memory alone, or None when the store must be read first (``allowed``):
        what a request's check runs inline, without a trip to a worker thread."""
        grants = self._grants.get(principal_id)
        if grants is None or time.monotonic() - grants[0] > self.TTL_S:
            return None
        return self._answer(principal_id, action, scope, grants[1])

    def allowed(self, principal_id: str, action: str, scope: str) -> bool:
        """The answer, reading the principal's grants from the store when they are not fresh."""
        answer = self.known(principal_id, action, scope)
        if answer is not None:
            return answer
        if len(self._answers) > 100_000:
            self._answers.clear()
        self._answers = {k: v for k, v in self._answers.items() if k[0] != principal_id}
        grants = self._read(principal_id)
        self._grants[principal_id] = (time.monotonic(), grants)
        return self._answer(principal_id, action, scope, grants)

    def _answer(self, principal_id: str, action: str, scope: str, grants: list[tuple[str, RoleDefinition]]) -> bool:
        key = (principal_id, action, scope)
        answer = self._answers.get(key)
        if answer is None:
            answer = self._answers[key] = any(covers(at, scope) and role.permits(action) for at, role in grants)
        return answer

    def _read(self, principal_id: str) -> list[tuple[str, RoleDefinition]]:
        with self._ws.store.transaction() as tx:
            records = tx.access.assignments(principal_id=principal_id)
            custom = {r.name: r.spec for r in tx.access.roles()} if records else {}
        grants = []
        for record in records:
            role = BUILT_IN.get(record.role.lower())
            if role is None and record.role in custom:
                role = RoleDefinition.model_validate(custom[record.role])
            if role is not None:  # a custom role deleted meanwhile grants nothing
                grants.append((record.scope, role))
        return grants
