"""Roles as Azure writes them: ``Actions`` and ``NotActions`` lists of action strings with ``*``
wildcards, assigned to a principal at a scope (the server, ``/``, or one workspace,
``/workspaces/<name>``). An action is permitted by a role when one of its ``Actions`` matches it
and none of its ``NotActions`` does; a principal may do what any of its assignments at the scope or
above permits. Matching ignores case, as Azure's does."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any

from pydantic import Field, field_validator

from smalt.entities.base import Entity

#: The resource provider of every action smalt checks, as Azure ML's are written.
PROVIDER = "Microsoft.MachineLearningServices/"
SERVER_SCOPE = "/"
#: An action string: provider, resource types and an operation, ``*`` anywhere.
ActionString = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[A-Za-z0-9*][A-Za-z0-9*./_-]*$")]
RoleName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._()-]*$")]


def action(short: str) -> str:
    """The full action string of ``short`` (``workspaces/jobs/read``); one with a provider as it is."""
    return short if short.startswith("Microsoft.") else PROVIDER + short


@lru_cache(maxsize=4096)
def _pattern(text: str) -> re.Pattern[str]:
    # A ``*`` between slashes stands for any number of segments, none included: Azure's AzureML Data
    # Scientist refuses ``workspaces/computes/write`` by its NotAction ``workspaces/computes/*/write``.
    middle = [".*".join(re.escape(part) for part in piece.split("*")) for piece in text.split("/*/")]
    return re.compile("^" + "/(?:.*/)?".join(middle) + "$", re.IGNORECASE)


def matches(pattern: str, action_string: str) -> bool:
    """Whether an ``Actions`` entry (wildcards allowed) covers ``action_string``."""
    return _pattern(pattern).match(action_string) is not None


def scope_of(text: str) -> str:
    """A scope as smalt keeps it: ``/`` or ``/workspaces/<name>``. Azure's long form of a workspace
    (``/subscriptions/<s>/resourceGroups/<g>/providers/Microsoft.MachineLearningServices/workspaces/
    <name>``) names that workspace; a subscription or a resource group is the whole server. Anything
    else (another kind of resource, something inside a workspace) is refused, never widened."""
    parts = [p for p in text.strip().split("/") if p]
    low = [p.lower() for p in parts]
    if not parts:
        return SERVER_SCOPE
    if len(parts) == 2 and low[0] == "workspaces":
        return f"/workspaces/{parts[1]}"
    if low[0] == "subscriptions":
        if len(parts) == 2 or (len(parts) == 4 and low[2] == "resourcegroups"):
            return SERVER_SCOPE
        if len(parts) == 8 and low[2] == "resourcegroups" and low[4:7] == [
            "providers", "microsoft.machinelearningservices", "workspaces",
        ]:  # fmt: skip
            return f"/workspaces/{parts[7]}"
    raise ValueError(f"scope {text!r} is neither the server (/) nor a workspace (/workspaces/<name>, or Azure's "
                     "/subscriptions/.../providers/Microsoft.MachineLearningServices/workspaces/<name>)")


def covers(scope: str, target: str) -> bool:
    """Whether an assignment at ``scope`` applies at ``target`` (the server covers every workspace)."""
    return scope == SERVER_SCOPE or scope.lower() == target.lower()


class RoleDefinition(Entity):
    """A role: built in, or custom as ``az role definition create --role-definition`` reads it."""

    name: RoleName = Field(alias="Name")
    description: Annotated[str, Field(max_length=2048)] = Field("", alias="Description")
    actions: list[ActionString] = Field(alias="Actions", max_length=500)
    not_actions: list[ActionString] = Field(default_factory=list, alias="NotActions", max_length=500)
    # Kept so that Azure's files load; smalt has no data plane to act on.
    data_actions: list[ActionString] = Field(default_factory=list, alias="DataActions", max_length=500)
    not_data_actions: list[ActionString] = Field(default_factory=list, alias="NotDataActions", max_length=500)
    assignable_scopes: list[str] = Field(default_factory=lambda: [SERVER_SCOPE], alias="AssignableScopes")
    is_custom: bool = Field(True, alias="IsCustom")
    id: str | None = Field(None, alias="Id")

    @field_validator("assignable_scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        return [scope_of(s) for s in value] or [SERVER_SCOPE]

    def permits(self, action_string: str) -> bool:
        return any(matches(a, action_string) for a in self.actions) and not any(
            matches(n, action_string) for n in self.not_actions
        )

    def to_azure(self) -> dict[str, Any]:
        """The role as Azure's JSON writes it (``az role definition list``)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class RoleAssignment(Entity):
    """A role given to a principal at a scope."""

    id: str
    principal: str
    role: str
    scope: str
    created_at: datetime
    created_by: str


def _builtin(name: str, description: str, actions: list[str], not_actions: list[str] | None = None) -> RoleDefinition:
    return RoleDefinition.model_validate({"Name": name, "Description": description, "Actions": actions,
                                          "NotActions": not_actions or [], "IsCustom": False})  # fmt: skip


_WS = PROVIDER + "workspaces/"
#: Azure's built-in roles that matter to a workspace, with Azure's own action lists.
BUILT_IN: dict[str, RoleDefinition] = {
    role.name.lower(): role
    for role in (
        _builtin("Owner", "Full access, including assigning roles to others.", ["*"]),
        _builtin("Contributor", "Full access, except assigning roles and managing identities.", ["*"],
                 ["Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
                  "Microsoft.Authorization/elevateAccess/Action"]),  # fmt: skip
        _builtin("Reader", "Read everything, change nothing.", ["*/read"]),
        _builtin("AzureML Data Scientist",
                 "Everything in a workspace except creating or deleting computes and changing the workspace.",
                 [f"{_WS}*/read", f"{_WS}*/action", f"{_WS}*/delete", f"{_WS}*/write"],
                 [f"{PROVIDER}workspaces/delete", f"{PROVIDER}workspaces/write", f"{_WS}computes/*/write",
                  f"{_WS}computes/*/delete", f"{_WS}computes/listKeys/action",
                  f"{PROVIDER}workspaces/listKeys/action"]),
        _builtin("AzureML Compute Operator", "Create, manage, delete and use computes in a workspace.",
                 [f"{_WS}computes/*", f"{PROVIDER}workspaces/read"]),
    )
}  # fmt: skip
