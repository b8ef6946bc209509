"""Identities, roles, the authorizer and the audit log, through the services on a real workspace."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from sqlalchemy import update

from smalt.entities.role import RoleDefinition
from smalt.errors import AlreadyExistsError, InvalidSpecError, InvalidStateError, NotFoundError
from smalt.services import WorkspaceContext, open_workspace
from smalt.services.audit import AuditService
from smalt.services.identities import PAT_PREFIX, Caller, IdentityService
from smalt.services.roles import Authorizer, RoleService
from smalt.services.workspace import caller
from smalt.store.tables import access_tokens

ADMIN = "admin@example.com"
PASSWORD = "correct horse battery"
ML = "Microsoft.MachineLearningServices/workspaces"


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[WorkspaceContext]:
    """The server's own workspace, with every change made by ``ADMIN`` (as a request of theirs would)."""
    context = open_workspace(tmp_path / "ws")
    token = caller.set(ADMIN)
    yield context
    caller.reset(token)
    context.close()


@pytest.fixture
def identities(ws: WorkspaceContext) -> IdentityService:
    return IdentityService(ws)


@pytest.fixture
def roles(ws: WorkspaceContext) -> RoleService:
    return RoleService(ws)


def audited(ws: WorkspaceContext, action: str) -> list[tuple[str, str, str]]:
    """(principal, action, resource) of the entries whose action starts with ``action``, oldest first."""
    return [(e.principal, e.action, e.resource) for e in reversed(AuditService(ws).list(action=action))]


# -- users -------------------------------------------------------------------------------------------
def test_a_user_is_created_and_listed_without_any_secret(identities: IdentityService, ws: WorkspaceContext) -> None:
    user = identities.create_user("ada", PASSWORD)

    assert (user.name, user.kind, user.created_by) == ("ada", "user", ADMIN)
    assert identities.get("ada") == user
    assert identities.get(user.id) == user
    assert [p.name for p in identities.list()] == ["ada"]
    assert PASSWORD not in repr(identities.list())
    assert audited(ws, "Microsoft.Authorization/principals/") == [
        (ADMIN, "Microsoft.Authorization/principals/write", "/principals/ada")
    ]


def test_a_short_password_is_refused_and_nothing_is_made(identities: IdentityService, ws: WorkspaceContext) -> None:
    with pytest.raises(InvalidSpecError, match="password"):
        identities.create_user("ada", "seven77")

    assert identities.list() == []
    assert AuditService(ws).list() == []


def test_an_invalid_name_is_refused(identities: IdentityService) -> None:
    for name in ("", "-ada", "ada lovelace", "a/b", "x" * 129):
        with pytest.raises(InvalidSpecError, match="name"):
            identities.create_user(name, PASSWORD)


def test_a_duplicate_name_is_refused(identities: IdentityService) -> None:
    identities.create_user("ada", PASSWORD)

    with pytest.raises(AlreadyExistsError, match="ada"):
        identities.create_user("ada", "another password")
    with pytest.raises(AlreadyExistsError, match="ada"):
        identities.create_service_principal("ada")
    assert len(identities.list()) == 1


def test_check_secret_right_wrong_and_unknown(identities: IdentityService) -> None:
    user = identities.create_user("ada", PASSWORD)

    assert identities.check_secret("ada", PASSWORD) == Caller("ada", user.id, "user")
    assert identities.check_secret(user.id, PASSWORD) == Caller("ada", user.id, "user")
    assert identities.check_secret("ada", PASSWORD + "!") is None
    assert identities.check_secret("ada", "") is None
    assert identities.check_secret("grace", PASSWORD) is None


def test_a_new_password_replaces_the_old_one(identities: IdentityService, ws: WorkspaceContext) -> None:
    identities.create_user("ada", PASSWORD)

    with pytest.raises(InvalidSpecError, match="password"):
        identities.reset_secret("ada")
    with pytest.raises(InvalidSpecError, match="password"):
        identities.reset_secret("ada", "short")
    assert identities.reset_secret("ada", "a new long password") is None

    assert identities.check_secret("ada", PASSWORD) is None
    assert identities.check_secret("ada", "a new long password") is not None
    assert ("admin@example.com", "Microsoft.Authorization/principals/write", "/principals/ada/secret") in audited(
        ws, "Microsoft.Authorization/principals/write"
    )


# -- service principals ----------------------------------------------------------------------------
def test_a_service_principal_authenticates_by_client_id_with_its_secret(
    identities: IdentityService, ws: WorkspaceContext
) -> None:
    made = identities.create_service_principal("ci")

    assert made.name == "ci" and made.tenant_id == ws.id == identities.tenant_id
    assert len(made.client_secret) >= 32
    found = identities.check_secret(made.client_id, made.client_secret)
    assert found == Caller("ci", made.client_id, "service_principal")
    assert identities.check_secret(made.client_id, made.client_secret[:-1]) is None
    assert identities.get("ci").id == made.client_id
    assert made.client_secret not in repr(identities.list())
    assert audited(ws, "Microsoft.Authorization/principals/") == [
        (ADMIN, "Microsoft.Authorization/principals/write", "/principals/ci")
    ]


def test_a_reset_secret_makes_the_old_one_fail(identities: IdentityService) -> None:
    made = identities.create_service_principal("ci")

    again = identities.reset_secret("ci")

    assert again is not None and again.client_id == made.client_id
    assert again.client_secret != made.client_secret
    assert identities.check_secret(made.client_id, made.client_secret) is None
    assert identities.check_secret(made.client_id, again.client_secret) is not None


def test_an_unknown_principal_is_not_found(identities: IdentityService) -> None:
    identities.create_user("ada", PASSWORD)

    with pytest.raises(NotFoundError, match="ada"):  # the message lists who exists
        identities.get("grace")
    with pytest.raises(NotFoundError):
        identities.delete("grace")
    with pytest.raises(NotFoundError):
        identities.reset_secret("grace", PASSWORD)
    with pytest.raises(NotFoundError):
        identities.create_token("grace", "laptop")


# -- personal access tokens ------------------------------------------------------------------------
def test_a_token_is_shown_once_and_never_listed(identities: IdentityService, ws: WorkspaceContext) -> None:
    user = identities.create_user("ada", PASSWORD)

    made = identities.create_token("ada", "laptop", expires_in_days=7)

    assert made.token is not None and made.token.startswith(f"{PAT_PREFIX}{made.id}_")
    assert (made.name, made.principal, made.revoked_at) == ("laptop", "ada", None)
    assert made.expires_at - made.created_at == timedelta(days=7)
    listed = identities.list_tokens("ada")
    assert [(t.id, t.name, t.token) for t in listed] == [(made.id, "laptop", None)]
    assert made.token not in repr(identities.list_tokens())
    assert made.token.rpartition("_")[2] not in repr(listed)
    checked = identities.check_pat(made.token)
    assert checked is not None and checked[0] == Caller("ada", user.id, "user")
    assert checked[1] == made.expires_at
    assert audited(ws, "Microsoft.Authorization/principals/tokens/") == [
        (ADMIN, "Microsoft.Authorization/principals/tokens/write", "/principals/ada/tokens/laptop")
    ]


def test_token_names_and_lifetimes_are_checked(identities: IdentityService) -> None:
    identities.create_user("ada", PASSWORD)
    identities.create_token("ada", "laptop")

    with pytest.raises(AlreadyExistsError, match="laptop"):
        identities.create_token("ada", "laptop")
    for days in (0, 367):
        with pytest.raises(InvalidSpecError, match="days"):
            identities.create_token("ada", "other", expires_in_days=days)
    with pytest.raises(InvalidSpecError):
        identities.create_token("ada", "bad name")
    assert [t.name for t in identities.list_tokens("ada")] == ["laptop"]


def test_a_revoked_token_fails(identities: IdentityService, ws: WorkspaceContext) -> None:
    identities.create_user("ada", PASSWORD)
    made = identities.create_token("ada", "laptop")
    assert made.token is not None

    identities.revoke_token("ada", "laptop")

    assert identities.check_pat(made.token) is None
    (listed,) = identities.list_tokens("ada")
    assert listed.revoked_at is not None
    with pytest.raises(NotFoundError, match="laptop2"):
        identities.revoke_token("ada", "laptop2")
    assert audited(ws, "Microsoft.Authorization/principals/tokens/delete") == [
        (ADMIN, "Microsoft.Authorization/principals/tokens/delete", "/principals/ada/tokens/laptop")
    ]


def test_a_token_name_stays_taken_after_revoking_as_the_hint_says(identities: IdentityService) -> None:
    """A second token of the same name is refused, and the hint says a revoked token keeps its name
    (the record of a revoked token stays, for the audit); revoking twice is refused too."""
    identities.create_user("ada", PASSWORD)
    first = identities.create_token("ada", "laptop")
    with pytest.raises(AlreadyExistsError) as refused:
        identities.create_token("ada", "laptop")
    assert refused.value.hint is not None and "revoked token keeps its name" in refused.value.hint

    identities.revoke_token("ada", "laptop")
    with pytest.raises(AlreadyExistsError):
        identities.create_token("ada", "laptop")
    with pytest.raises(InvalidStateError, match="revoked already"):
        identities.revoke_token("ada", "laptop")
    second = identities.create_token("ada", "laptop-2")
    assert second.id != first.id and second.token is not None
    assert first.token is not None and identities.check_pat(first.token) is None
    assert identities.check_pat(second.token) is not None


def test_an_expired_token_fails(identities: IdentityService, ws: WorkspaceContext) -> None:
    identities.create_user("ada", PASSWORD)
    made = identities.create_token("ada", "laptop")
    assert made.token is not None and identities.check_pat(made.token) is not None

    with ws.store.transaction(write=True) as tx:
        tx.connection.execute(update(access_tokens).where(access_tokens.c.id == made.id)
                              .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))  # fmt: skip

    assert identities.check_pat(made.token) is None


def test_a_tampered_or_unknown_token_fails(identities: IdentityService) -> None:
    identities.create_user("ada", PASSWORD)
    made = identities.create_token("ada", "laptop")
    other = identities.create_token("ada", "desktop")
    assert made.token is not None and other.token is not None
    secret = made.token.removeprefix(f"{PAT_PREFIX}{made.id}_")
    flipped = ("A" if secret[-1] != "A" else "B")

    for token in (
        made.token[:-1] + flipped,
        f"{PAT_PREFIX}{made.id}_",
        f"{PAT_PREFIX}{made.id}",
        f"{PAT_PREFIX}{made.id}_{other.token.rpartition('_')[2]}x",  # another token's secret
        f"{PAT_PREFIX}{other.id}_{secret}",  # this secret under another token's id
        f"{PAT_PREFIX}0000000000000000_{secret}",
        PAT_PREFIX,
        "",
    ):
        assert identities.check_pat(token) is None, token
    assert identities.check_pat(made.token) is not None


# -- signed access tokens ----------------------------------------------------------------------------
def test_a_signed_token_round_trips(identities: IdentityService, ws: WorkspaceContext) -> None:
    made = identities.create_service_principal("ci")
    who = Caller("ci", made.client_id, "service_principal")

    issued = identities.issue(who)

    assert (issued.token_type, issued.expires_in) == ("Bearer", 3600)
    checked = identities.check_jwt(issued.access_token)
    assert checked is not None
    assert checked[0] == who
    assert time.time() + 3500 < checked[1] <= time.time() + 3600
    key = ws.path / "signing.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # Another service of the same workspace (another process of the server) checks it too.
    assert IdentityService(ws).check_jwt(issued.access_token) == checked


def test_a_token_signed_by_another_workspace_is_refused(identities: IdentityService, tmp_path: Path) -> None:
    made = identities.create_service_principal("ci")
    other = open_workspace(tmp_path / "other")
    try:
        foreign = IdentityService(other).issue(Caller("ci", made.client_id, "service_principal"))
    finally:
        other.close()

    assert identities.check_jwt(foreign.access_token) is None
    assert identities.check_jwt("not.a.token") is None
    assert identities.check_jwt("") is None


def _forge(ws: WorkspaceContext, **claims: object) -> str:
    """A token signed with the workspace's own key, with ``claims`` over a valid set."""
    now = int(time.time())
    body = {"iss": "smalt", "tid": ws.id, "sub": "id-1", "name": "ci", "kind": "service_principal", "iat": now,
            "exp": now + 600, "jti": "x"}  # fmt: skip
    return jwt.encode({**body, **claims}, (ws.path / "signing.key").read_bytes().strip(), algorithm="HS256")


def test_an_expired_or_foreign_tenant_token_is_refused(identities: IdentityService, ws: WorkspaceContext) -> None:
    identities.issue(Caller("ci", "id-1", "service_principal"))  # makes the signing key
    now = int(time.time())

    assert identities.check_jwt(_forge(ws, exp=now + 600)) == (Caller("ci", "id-1", "service_principal"), now + 600.0)
    assert identities.check_jwt(_forge(ws, iat=now - 7200, exp=now - 3600)) is None
    assert identities.check_jwt(_forge(ws, exp=now - 1)) is None
    assert identities.check_jwt(_forge(ws, tid="another-tenant")) is None
    assert identities.check_jwt(_forge(ws, iss="someone-else")) is None
    unsigned = jwt.encode({"iss": "smalt", "tid": ws.id, "sub": "id-1", "exp": now + 600}, "", algorithm="none")
    assert identities.check_jwt(unsigned) is None


# -- roles ---------------------------------------------------------------------------------------------
RUNNER = {"Name": "Job Runner", "Description": "Runs jobs.", "Actions": [f"{ML}/jobs/*", f"{ML}/read"],
          "NotActions": [f"{ML}/jobs/delete"], "AssignableScopes": ["/"]}  # fmt: skip


def test_a_custom_role_is_created_listed_got_updated_and_deleted(roles: RoleService, ws: WorkspaceContext) -> None:
    made = roles.create_or_update_role(RoleDefinition.model_validate(RUNNER))

    assert made.is_custom and made.id
    assert roles.get_role("Job Runner") == made
    assert [r.name for r in roles.list_roles()][-1] == "Job Runner"
    assert len(roles.list_roles()) == 6

    changed = roles.create_or_update_role(RoleDefinition.model_validate({**RUNNER, "Description": "Changed."}))

    assert changed.id == made.id
    assert roles.get_role("Job Runner").description == "Changed."
    assert len(roles.list_roles()) == 6

    roles.delete_role("Job Runner")

    with pytest.raises(NotFoundError, match="Job Runner"):
        roles.get_role("Job Runner")
    with pytest.raises(NotFoundError):
        roles.delete_role("Job Runner")
    assert audited(ws, "Microsoft.Authorization/roleDefinitions/") == [
        (ADMIN, "Microsoft.Authorization/roleDefinitions/write", "/roleDefinitions/Job Runner"),
        (ADMIN, "Microsoft.Authorization/roleDefinitions/write", "/roleDefinitions/Job Runner"),
        (ADMIN, "Microsoft.Authorization/roleDefinitions/delete", "/roleDefinitions/Job Runner"),
    ]


def test_built_in_roles_cannot_be_changed_or_deleted(roles: RoleService, ws: WorkspaceContext) -> None:
    assert roles.get_role("reader").name == "Reader"  # looked up without case

    for name in ("Owner", "reader", "AzureML Data Scientist"):
        with pytest.raises(InvalidStateError, match="built-in"):
            roles.create_or_update_role(RoleDefinition.model_validate({"Name": name, "Actions": ["*"]}))
        with pytest.raises(InvalidStateError, match="built-in"):
            roles.delete_role(name)
    assert not roles.get_role("Reader").permits(f"{ML}/jobs/write")
    assert AuditService(ws).list() == []


def test_a_role_in_use_cannot_be_deleted(roles: RoleService, identities: IdentityService) -> None:
    identities.create_user("ada", PASSWORD)
    roles.create_or_update_role(RoleDefinition.model_validate(RUNNER))
    assigned = roles.assign("ada", "Job Runner")

    with pytest.raises(InvalidStateError, match="assigned"):
        roles.delete_role("Job Runner")
    assert roles.get_role("Job Runner").name == "Job Runner"

    roles.unassign(assigned.id)
    roles.delete_role("Job Runner")


# -- role assignments ----------------------------------------------------------------------------------
def test_assign_at_the_server_and_at_a_workspace(
    roles: RoleService, identities: IdentityService, ws: WorkspaceContext
) -> None:
    identities.create_user("ada", PASSWORD)
    made = identities.create_service_principal("ci")

    server = roles.assign("ada", "Reader")
    workspace = roles.assign(made.client_id, "AzureML Data Scientist", "/workspaces/ws1")
    long = roles.assign("ci", "reader", "/subscriptions/s/resourceGroups/rg/providers/"
                        "Microsoft.MachineLearningServices/workspaces/ws2")  # fmt: skip

    assert (server.principal, server.role, server.scope, server.created_by) == ("ada", "Reader", "/", ADMIN)
    assert (workspace.principal, workspace.role, workspace.scope) == ("ci", "AzureML Data Scientist", "/workspaces/ws1")
    assert (long.role, long.scope) == ("Reader", "/workspaces/ws2")
    assert [a.id for a in roles.assignments()] == [server.id, workspace.id, long.id]
    assert [a.id for a in roles.assignments(assignee="ci")] == [workspace.id, long.id]
    assert [a.id for a in roles.assignments(assignee=made.client_id)] == [workspace.id, long.id]
    assert [a.id for a in roles.assignments(role="Reader")] == [server.id, long.id]
    assert [a.id for a in roles.assignments(scope="/workspaces/ws1")] == [workspace.id]
    assert roles.assignments(assignee="nobody") == []
    entries = AuditService(ws).list(action="Microsoft.Authorization/roleAssignments/")
    assert [(e.principal, e.action, e.resource, e.workspace) for e in reversed(entries)] == [
        (ADMIN, "Microsoft.Authorization/roleAssignments/write", f"/roleAssignments/{server.id}", None),
        (ADMIN, "Microsoft.Authorization/roleAssignments/write", f"/roleAssignments/{workspace.id}", "ws1"),
        (ADMIN, "Microsoft.Authorization/roleAssignments/write", f"/roleAssignments/{long.id}", "ws2"),
    ]


def test_assign_refuses_an_unknown_principal_role_or_scope_and_a_duplicate(
    roles: RoleService, identities: IdentityService
) -> None:
    identities.create_user("ada", PASSWORD)
    roles.assign("ada", "Reader", "/workspaces/ws1")

    with pytest.raises(NotFoundError, match="grace"):
        roles.assign("grace", "Reader")
    with pytest.raises(NotFoundError, match="Role 'Janitor'"):
        roles.assign("ada", "Janitor")
    with pytest.raises(InvalidSpecError, match="scope"):
        roles.assign("ada", "Reader", "/workspaces/ws1/jobs/j1")
    with pytest.raises(AlreadyExistsError, match="Reader"):
        roles.assign("ada", "Reader", "/workspaces/ws1")
    with pytest.raises(AlreadyExistsError):
        roles.assign("ada", "reader", "workspaces/ws1/")
    assert len(roles.assignments()) == 1
    assert roles.assign("ada", "Reader", "/workspaces/ws2").scope == "/workspaces/ws2"


def test_a_role_is_assigned_only_at_its_assignable_scopes(roles: RoleService, identities: IdentityService) -> None:
    identities.create_user("ada", PASSWORD)
    roles.create_or_update_role(RoleDefinition.model_validate({**RUNNER, "AssignableScopes": ["/workspaces/ws1"]}))

    with pytest.raises(InvalidSpecError, match="/workspaces/ws1"):
        roles.assign("ada", "Job Runner", "/")
    with pytest.raises(InvalidSpecError):
        roles.assign("ada", "Job Runner", "/workspaces/ws2")
    assert roles.assign("ada", "Job Runner", "/workspaces/ws1").scope == "/workspaces/ws1"


def test_unassign(roles: RoleService, identities: IdentityService, ws: WorkspaceContext) -> None:
    identities.create_user("ada", PASSWORD)
    assigned = roles.assign("ada", "Reader")

    roles.unassign(assigned.id)

    assert roles.assignments() == []
    with pytest.raises(NotFoundError, match=assigned.id):
        roles.unassign(assigned.id)
    assert audited(ws, "Microsoft.Authorization/roleAssignments/delete") == [
        (ADMIN, "Microsoft.Authorization/roleAssignments/delete", f"/roleAssignments/{assigned.id}")
    ]


# -- the authorizer ------------------------------------------------------------------------------------
def test_a_server_grant_covers_every_workspace_and_a_workspace_grant_only_its_own(
    roles: RoleService, identities: IdentityService, ws: WorkspaceContext
) -> None:
    reader = identities.create_user("ada", PASSWORD).id
    scientist = identities.create_service_principal("ci").client_id
    nobody = identities.create_user("grace", PASSWORD).id
    roles.assign("ada", "Reader")
    roles.assign("ci", "AzureML Data Scientist", "/workspaces/ws1")
    authorizer = Authorizer(ws)

    for scope in ("/", "/workspaces/ws1", "/workspaces/ws2"):
        assert authorizer.allowed(reader, f"{ML}/jobs/read", scope)
        assert not authorizer.allowed(reader, f"{ML}/jobs/write", scope)
        assert not authorizer.allowed(nobody, f"{ML}/jobs/read", scope)
    assert authorizer.allowed(scientist, f"{ML}/jobs/write", "/workspaces/ws1")
    assert authorizer.allowed(scientist, f"{ML}/jobs/write", "/WORKSPACES/WS1")
    assert not authorizer.allowed(scientist, f"{ML}/computes/write", "/workspaces/ws1")
    assert not authorizer.allowed(scientist, f"{ML}/jobs/write", "/workspaces/ws2")
    assert not authorizer.allowed(scientist, f"{ML}/jobs/write", "/")
    assert not authorizer.allowed("no-such-id", f"{ML}/read", "/")


def test_a_custom_role_grants_what_it_says(
    roles: RoleService, identities: IdentityService, ws: WorkspaceContext
) -> None:
    ada = identities.create_user("ada", PASSWORD).id
    roles.create_or_update_role(RoleDefinition.model_validate(RUNNER))
    roles.assign("ada", "Job Runner", "/workspaces/ws1")
    authorizer = Authorizer(ws)

    assert authorizer.allowed(ada, f"{ML}/jobs/write", "/workspaces/ws1")
    assert authorizer.allowed(ada, f"{ML}/jobs/cancel/action", "/workspaces/ws1")
    assert not authorizer.allowed(ada, f"{ML}/jobs/delete", "/workspaces/ws1")
    assert not authorizer.allowed(ada, f"{ML}/models/read", "/workspaces/ws1")


def test_the_answer_changes_after_unassign_and_forget(
    roles: RoleService, identities: IdentityService, ws: WorkspaceContext
) -> None:
    ada = identities.create_user("ada", PASSWORD).id
    assigned = roles.assign("ada", "Reader", "/workspaces/ws1")
    authorizer = Authorizer(ws)
    assert authorizer.allowed(ada, f"{ML}/jobs/read", "/workspaces/ws1")

    roles.unassign(assigned.id)
    assert authorizer.allowed(ada, f"{ML}/jobs/read", "/workspaces/ws1")  # kept until told or TTL_S
    authorizer.forget()
    assert not authorizer.allowed(ada, f"{ML}/jobs/read", "/workspaces/ws1")

    roles.assign("ada", "Contributor")
    assert not authorizer.allowed(ada, f"{ML}/jobs/write", "/workspaces/ws2")
    authorizer.forget()
    assert authorizer.allowed(ada, f"{ML}/jobs/write", "/workspaces/ws2")


def test_the_authorizer_reads_again_after_its_ttl(
    roles: RoleService, identities: IdentityService, ws: WorkspaceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = identities.create_user("ada", PASSWORD).id
    authorizer = Authorizer(ws)
    assert not authorizer.allowed(ada, f"{ML}/read", "/")
    roles.assign("ada", "Reader")

    monkeypatch.setattr(authorizer, "TTL_S", 0.0)
    time.sleep(0.01)

    assert authorizer.allowed(ada, f"{ML}/read", "/")


def test_a_deleted_custom_role_grants_nothing(
    roles: RoleService, identities: IdentityService, ws: WorkspaceContext
) -> None:
    ada = identities.create_user("ada", PASSWORD).id
    roles.create_or_update_role(RoleDefinition.model_validate(RUNNER))
    assigned = roles.assign("ada", "Job Runner")
    authorizer = Authorizer(ws)
    assert authorizer.allowed(ada, f"{ML}/jobs/write", "/")

    roles.create_or_update_role(RoleDefinition.model_validate({**RUNNER, "Actions": [f"{ML}/read"]}))
    authorizer.forget()
    assert not authorizer.allowed(ada, f"{ML}/jobs/write", "/")
    assert authorizer.allowed(ada, f"{ML}/read", "/")
    roles.unassign(assigned.id)
    roles.delete_role("Job Runner")
    authorizer.forget()
    assert not authorizer.allowed(ada, f"{ML}/read", "/")


# -- deleting a principal ------------------------------------------------------------------------------
def test_deleting_a_principal_removes_its_tokens_and_assignments(
    roles: RoleService, identities: IdentityService, ws: WorkspaceContext
) -> None:
    ada = identities.create_user("ada", PASSWORD).id
    identities.create_user("grace", PASSWORD)
    token = identities.create_token("ada", "laptop").token
    kept = identities.create_token("grace", "laptop").token
    roles.assign("ada", "Reader")
    roles.assign("ada", "Contributor", "/workspaces/ws1")
    roles.assign("grace", "Reader")
    assert token is not None and kept is not None

    identities.delete("ada")

    assert [p.name for p in identities.list()] == ["grace"]
    assert identities.check_secret("ada", PASSWORD) is None
    assert identities.check_pat(token) is None
    assert identities.check_pat(kept) is not None
    assert [t.principal for t in identities.list_tokens()] == ["grace"]
    assert [a.principal for a in roles.assignments()] == ["grace"]
    assert not Authorizer(ws).allowed(ada, f"{ML}/read", "/")
    assert audited(ws, "Microsoft.Authorization/principals/delete") == [
        (ADMIN, "Microsoft.Authorization/principals/delete", "/principals/ada")
    ]
    # A new principal of the same name is another principal: it gets nothing of the old one's.
    again = identities.create_user("ada", PASSWORD)
    assert again.id != ada
    assert roles.assignments(assignee="ada") == []
    assert identities.list_tokens("ada") == []


# -- the audit log -------------------------------------------------------------------------------------
def test_every_change_is_audited_newest_first_with_who_and_where(
    roles: RoleService, identities: IdentityService, ws: WorkspaceContext
) -> None:
    identities.create_user("ada", PASSWORD)
    identities.create_token("ada", "laptop")
    assigned = roles.assign("ada", "Reader", "/workspaces/ws1")
    roles.unassign(assigned.id)
    identities.revoke_token("ada", "laptop")
    identities.delete("ada")
    audit = AuditService(ws)

    entries = audit.list()

    assert [e.action.removeprefix("Microsoft.Authorization/") for e in entries] == [
        "principals/delete", "principals/tokens/delete", "roleAssignments/delete", "roleAssignments/write",
        "principals/tokens/write", "principals/write",
    ]  # fmt: skip
    assert all(e.principal == ADMIN and e.outcome == "succeeded" and e.status == 200 for e in entries)
    assert all((e.request_id, e.client) == ("cli", "local") for e in entries)
    assert [e.id for e in entries] == sorted((e.id for e in entries), reverse=True)
    assert len(audit.list(action="microsoft.authorization/principals/tokens")) == 2
    assert len(audit.list(principal=ADMIN)) == 6
    assert audit.list(principal="ada") == []
    assert len(audit.list(since=entries[-1].at)) == 6
    assert audit.list(since=datetime.now(UTC) + timedelta(minutes=1)) == []
    assert [e.id for e in audit.list(max_results=2)] == [entries[0].id, entries[1].id]


def test_who_acts_outside_a_request_is_this_processs_user(tmp_path: Path) -> None:
    context = open_workspace(tmp_path / "ws")
    try:
        IdentityService(context).create_user("ada", PASSWORD)
        (entry,) = AuditService(context).list()
        assert entry.principal == context.owner
    finally:
        context.close()
