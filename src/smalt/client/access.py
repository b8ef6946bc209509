"""The SDK's groups for who may call a server: ``principals`` (users, service principals, their
tokens), ``roles``, ``role_assignments`` and ``audit``. In-process they act on the workspace
folder's own identities (how the first Owner of a server is made, on its machine); over HTTP on
the server's, as the caller's roles allow. Each group has its backend Protocol and HTTP twin here.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from smalt.entities.identity import AuditEntry, PersonalAccessToken, Principal, ServicePrincipalSecret
from smalt.entities.role import SERVER_SCOPE, RoleAssignment, RoleDefinition

if TYPE_CHECKING:
    from smalt.client.rest import RestClient


class PrincipalBackend(Protocol):
    def create_user(self, name: str, password: str) -> Principal: ...
    def create_service_principal(self, name: str) -> ServicePrincipalSecret: ...
    def get(self, name: str) -> Principal: ...
    def list(self) -> builtins.list[Principal]: ...
    def delete(self, name: str) -> None: ...
    def reset_secret(self, name: str, password: str | None = None) -> ServicePrincipalSecret | None: ...
    def create_token(self, principal: str, name: str, *, expires_in_days: int = 30) -> PersonalAccessToken: ...
    def list_tokens(self, principal: str | None = None) -> builtins.list[PersonalAccessToken]: ...
    def revoke_token(self, principal: str, name: str) -> None: ...
    def whoami(self) -> str: ...


class RoleBackend(Protocol):
    def list_roles(self) -> builtins.list[RoleDefinition]: ...
    def get_role(self, name: str) -> RoleDefinition: ...
    def create_or_update_role(self, role: RoleDefinition) -> RoleDefinition: ...
    def delete_role(self, name: str) -> None: ...
    def assign(self, assignee: str, role: str, scope: str = SERVER_SCOPE) -> RoleAssignment: ...
    def assignments(self, *, assignee: str | None = None, role: str | None = None,
                    scope: str | None = None) -> builtins.list[RoleAssignment]: ...  # fmt: skip
    def unassign(self, assignment_id: str) -> None: ...


class AuditBackend(Protocol):
    def list(self, *, since: datetime | None = None, principal: str | None = None, action: str | None = None,
             max_results: int = 1000) -> builtins.list[AuditEntry]: ...  # fmt: skip


class PrincipalOperations:
    """Users and service principals, and their personal access tokens.

    Example::

        made = ml_client.principals.create_service_principal("ci")   # made.client_secret: shown once
        ml_client.role_assignments.create("ci", "AzureML Data Scientist", "/workspaces/team")
    """

    def __init__(self, backend: PrincipalBackend) -> None:
        self._backend = backend

    def create_user(self, name: str, password: str) -> Principal:
        return self._backend.create_user(name, password)

    def create_service_principal(self, name: str) -> ServicePrincipalSecret:
        """The client id, secret and tenant: the secret is in this answer and nowhere else."""
        return self._backend.create_service_principal(name)

    def get(self, name: str) -> Principal:
        return self._backend.get(name)

    def list(self) -> builtins.list[Principal]:
        return self._backend.list()

    def delete(self, name: str) -> None:
        """The principal, its tokens and its role assignments."""
        self._backend.delete(name)

    def reset_secret(self, name: str, password: str | None = None) -> ServicePrincipalSecret | None:
        """A user's new ``password``; for a service principal, a new secret, answered once."""
        return self._backend.reset_secret(name, password)

    def create_token(self, principal: str | None, name: str, *, expires_in_days: int = 30) -> PersonalAccessToken:
        """A personal access token of ``principal`` (None: the caller); its secret (``token``) is in
        this answer and nowhere else."""
        return self._backend.create_token(principal or self.whoami(), name, expires_in_days=expires_in_days)

    def list_tokens(self, principal: str | None = None) -> builtins.list[PersonalAccessToken]:
        """The tokens of ``principal``, or of everyone the caller may see."""
        return self._backend.list_tokens(principal)

    def revoke_token(self, principal: str | None, name: str) -> None:
        self._backend.revoke_token(principal or self.whoami(), name)

    def whoami(self) -> str:
        """The caller's name: the principal a server authenticated, or in-process this machine's user."""
        return self._backend.whoami()


class RoleOperations:
    """Built-in and custom roles, as Azure's JSON writes them."""

    def __init__(self, backend: RoleBackend) -> None:
        self._backend = backend

    def list(self) -> builtins.list[RoleDefinition]:
        return self._backend.list_roles()

    def get(self, name: str) -> RoleDefinition:
        return self._backend.get_role(name)

    def create_or_update(self, role: RoleDefinition | dict[str, Any]) -> RoleDefinition:
        """A custom role: a ``RoleDefinition`` or Azure's JSON (``Name``, ``Actions``, ``NotActions``...)."""
        definition = role if isinstance(role, RoleDefinition) else RoleDefinition.model_validate(role)
        return self._backend.create_or_update_role(definition)

    def delete(self, name: str) -> None:
        self._backend.delete_role(name)


class RoleAssignmentOperations:
    """Roles given to principals at the server (``/``) or a workspace (``/workspaces/<name>``)."""

    def __init__(self, backend: RoleBackend) -> None:
        self._backend = backend

    def create(self, assignee: str, role: str, scope: str = SERVER_SCOPE) -> RoleAssignment:
        return self._backend.assign(assignee, role, scope)

    def list(self, *, assignee: str | None = None, role: str | None = None,
             scope: str | None = None) -> builtins.list[RoleAssignment]:  # fmt: skip
        return self._backend.assignments(assignee=assignee, role=role, scope=scope)

    def delete(self, assignment_id: str) -> None:
        self._backend.unassign(assignment_id)


class AuditOperations:
    """The audit log, newest first."""

    def __init__(self, backend: AuditBackend) -> None:
        self._backend = backend

    def list(self, *, since: datetime | None = None, principal: str | None = None, action: str | None = None,
             max_results: int = 1000) -> builtins.list[AuditEntry]:  # fmt: skip
        return self._backend.list(since=since, principal=principal, action=action, max_results=max_results)


# -- over HTTP ----------------------------------------------------------------------------------------
class HttpPrincipals:
    def __init__(self, rest: RestClient) -> None:
        self._rest = rest

    def create_user(self, name: str, password: str) -> Principal:
        return Principal.model_validate(self._rest.call("POST", "/users", {"name": name, "password": password}))

    def create_service_principal(self, name: str) -> ServicePrincipalSecret:
        return ServicePrincipalSecret.model_validate(self._rest.call("POST", "/service-principals", {"name": name}))

    def get(self, name: str) -> Principal:
        return Principal.model_validate(self._rest.call("GET", f"/principals/{name}"))

    def list(self) -> builtins.list[Principal]:
        return [Principal.model_validate(p) for p in self._rest.call("GET", "/principals")]

    def delete(self, name: str) -> None:
        self._rest.call("DELETE", f"/principals/{name}")

    def reset_secret(self, name: str, password: str | None = None) -> ServicePrincipalSecret | None:
        answer = self._rest.call("POST", f"/principals/{name}/reset-secret", {"password": password})
        return ServicePrincipalSecret.model_validate(answer) if answer else None

    def create_token(self, principal: str, name: str, *, expires_in_days: int = 30) -> PersonalAccessToken:
        body = {"name": name, "expires_in_days": expires_in_days}
        return PersonalAccessToken.model_validate(self._rest.call("POST", f"/principals/{principal}/tokens", body))

    def whoami(self) -> str:
        return str(self._rest.call("GET", "/whoami")["name"])

    def list_tokens(self, principal: str | None = None) -> builtins.list[PersonalAccessToken]:
        principal = principal or self.whoami()
        found = self._rest.call("GET", f"/principals/{principal}/tokens")
        return [PersonalAccessToken.model_validate(t) for t in found]

    def revoke_token(self, principal: str, name: str) -> None:
        self._rest.call("DELETE", f"/principals/{principal}/tokens/{name}")


class HttpRoles:
    def __init__(self, rest: RestClient) -> None:
        self._rest = rest

    def list_roles(self) -> builtins.list[RoleDefinition]:
        return [RoleDefinition.model_validate(r) for r in self._rest.call("GET", "/roles")]

    def get_role(self, name: str) -> RoleDefinition:
        return RoleDefinition.model_validate(self._rest.call("GET", f"/roles/{name}"))

    def create_or_update_role(self, role: RoleDefinition) -> RoleDefinition:
        return RoleDefinition.model_validate(self._rest.call("POST", "/roles", role.to_azure()))

    def delete_role(self, name: str) -> None:
        self._rest.call("DELETE", f"/roles/{name}")

    def assign(self, assignee: str, role: str, scope: str = SERVER_SCOPE) -> RoleAssignment:
        body = {"assignee": assignee, "role": role, "scope": scope}
        return RoleAssignment.model_validate(self._rest.call("POST", "/role-assignments", body))

    def assignments(self, *, assignee: str | None = None, role: str | None = None,
                    scope: str | None = None) -> builtins.list[RoleAssignment]:  # fmt: skip
        found = self._rest.call("GET", "/role-assignments", assignee=assignee, role=role, scope=scope)
        return [RoleAssignment.model_validate(a) for a in found]

    def unassign(self, assignment_id: str) -> None:
        self._rest.call("DELETE", f"/role-assignments/{assignment_id}")


class HttpAudit:
    def __init__(self, rest: RestClient) -> None:
        self._rest = rest

    def list(self, *, since: datetime | None = None, principal: str | None = None, action: str | None = None,
             max_results: int = 1000) -> builtins.list[AuditEntry]:  # fmt: skip
        found = self._rest.call("GET", "/audit", since=since.isoformat() if since else None, principal=principal,
                                action=action, max_results=max_results)  # fmt: skip
        return [AuditEntry.model_validate(e) for e in found]
