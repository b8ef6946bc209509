"""Roles as Azure writes them: action strings with wildcards, the built-in roles against the actions
Azure documents, custom roles read from Azure's JSON, and scopes."""

from __future__ import annotations

import pytest

from smalt.entities.role import BUILT_IN, PROVIDER, SERVER_SCOPE, RoleDefinition, action, covers, matches, scope_of
from smalt.errors import InvalidSpecError

ML = "Microsoft.MachineLearningServices/workspaces"
AUTH = "Microsoft.Authorization"
LONG = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"


# -- wildcards ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "action_string"),
    [
        ("*", f"{ML}/jobs/write"),
        ("*", f"{AUTH}/roleAssignments/write"),
        ("*/read", f"{ML}/read"),
        ("*/read", f"{ML}/onlineEndpoints/deployments/read"),
        (f"{ML}/jobs/*", f"{ML}/jobs/write"),
        (f"{ML}/jobs/*", f"{ML}/jobs/cancel/action"),
        (f"{ML}/*/read", f"{ML}/experiments/runs/read"),
        (f"{ML}/jobs/write", f"{ML}/jobs/write"),
        # A `*` between slashes also stands for no segment at all: Azure's Data Scientist refuses
        # `computes/write` by its NotAction `computes/*/write`.
        (f"{ML}/computes/*/write", f"{ML}/computes/write"),
        (f"{ML}/computes/*/write", f"{ML}/computes/instances/write"),
        (f"{ML}/computes/*/write", f"{ML}/computes/a/b/write"),
        (f"{ML}/*/action", f"{ML}/onlineEndpoints/score/action"),
        (f"{ML}/on*/score/action", f"{ML}/onlineEndpoints/score/action"),
    ],
)
def test_a_pattern_matches(pattern: str, action_string: str) -> None:
    assert matches(pattern, action_string)


@pytest.mark.parametrize(
    ("pattern", "action_string"),
    [
        (f"{ML}/jobs/write", f"{ml}/jobs/write")
        for ml in ("microsoft.machinelearningservices/workspaces", "MICROSOFT.MACHINELEARNINGSERVICES/WORKSPACES")
    ]
    + [
        (f"{AUTH}/*/Write", f"{AUTH}/roleAssignments/write"),
        (f"{AUTH}/elevateAccess/Action", f"{AUTH}/elevateaccess/action"),
        ("*/READ", f"{ML}/jobs/read"),
    ],
)
def test_matching_ignores_case(pattern: str, action_string: str) -> None:
    assert matches(pattern, action_string)


@pytest.mark.parametrize(
    ("pattern", "action_string"),
    [
        ("*/read", f"{ML}/jobs/write"),
        ("*/read", f"{ML}/jobs/readme"),
        (f"{ML}/jobs/*", f"{ML}/computes/write"),
        (f"{ML}/jobs/*", f"{ML}/jobs"),
        (f"{ML}/jobs/write", f"{ML}/jobs/write/extra"),
        (f"{ML}/jobs/write", f"x{ML}/jobs/write"),
        # `/*/` stands for whole segments: not for part of one.
        (f"{ML}/computes/*/write", f"{ML}/computes/overwrite"),
        (f"{ML}/computes/*/write", f"{ML}/computesX/write"),
        (f"{ML}/computes/*/write", f"{ML}/computes/instances/writes"),
        # The dot of the provider is a dot, not any character.
        (f"{ML}/read", "MicrosoftXMachineLearningServices/workspaces/read"),
    ],
)
def test_a_pattern_does_not_match(pattern: str, action_string: str) -> None:
    assert not matches(pattern, action_string)


def test_a_short_action_gets_the_provider_and_a_full_one_is_kept() -> None:
    assert action("workspaces/jobs/read") == f"{ML}/jobs/read"
    assert action(f"{AUTH}/roleAssignments/write") == f"{AUTH}/roleAssignments/write"
    assert PROVIDER == "Microsoft.MachineLearningServices/"


# -- the built-in roles ------------------------------------------------------------------------------
ROLES = ("Owner", "Contributor", "Reader", "AzureML Data Scientist", "AzureML Compute Operator")
Y, N = True, False
#: What each built-in role permits, as Azure documents the roles:      Owner Contr Reader DataSci CompOp
TABLE: list[tuple[str, tuple[bool, bool, bool, bool, bool]]] = [
    (f"{ML}/read",                                   (Y, Y, Y, Y, Y)),
    (f"{ML}/jobs/read",                              (Y, Y, Y, Y, N)),
    (f"{ML}/computes/read",                          (Y, Y, Y, Y, Y)),
    (f"{ML}/models/read",                            (Y, Y, Y, Y, N)),
    (f"{ML}/datastores/read",                        (Y, Y, Y, Y, N)),
    (f"{ML}/onlineEndpoints/deployments/read",       (Y, Y, Y, Y, N)),
    (f"{ML}/jobs/write",                             (Y, Y, N, Y, N)),
    (f"{ML}/jobs/cancel/action",                     (Y, Y, N, Y, N)),
    (f"{ML}/models/write",                           (Y, Y, N, Y, N)),
    (f"{ML}/models/delete",                          (Y, Y, N, Y, N)),
    (f"{ML}/experiments/runs/write",                 (Y, Y, N, Y, N)),
    (f"{ML}/onlineEndpoints/score/action",           (Y, Y, N, Y, N)),
    (f"{ML}/connections/listsecrets/action",         (Y, Y, N, Y, N)),
    (f"{ML}/computes/write",                         (Y, Y, N, N, Y)),
    (f"{ML}/computes/delete",                        (Y, Y, N, N, Y)),
    (f"{ML}/computes/start/action",                  (Y, Y, N, Y, Y)),
    (f"{ML}/computes/listKeys/action",               (Y, Y, N, N, Y)),
    (f"{ML}/write",                                  (Y, Y, N, N, N)),
    (f"{ML}/delete",                                 (Y, Y, N, N, N)),
    (f"{ML}/listKeys/action",                        (Y, Y, N, N, N)),
    (f"{AUTH}/roleAssignments/read",                 (Y, Y, Y, N, N)),
    (f"{AUTH}/roleAssignments/write",                (Y, N, N, N, N)),
    (f"{AUTH}/roleAssignments/delete",               (Y, N, N, N, N)),
    (f"{AUTH}/roleDefinitions/write",                (Y, N, N, N, N)),
    (f"{AUTH}/elevateAccess/action",                 (Y, N, N, N, N)),
]  # fmt: skip


def test_the_built_in_roles_are_azures_five_and_not_custom() -> None:
    assert sorted(r.name for r in BUILT_IN.values()) == sorted(ROLES)
    assert all(not r.is_custom for r in BUILT_IN.values())
    assert all(r.assignable_scopes == [SERVER_SCOPE] for r in BUILT_IN.values())
    assert all(key == r.name.lower() for key, r in BUILT_IN.items())


@pytest.mark.parametrize(("action_string", "expected"), TABLE, ids=[a.split("/", 1)[1] for a, _ in TABLE])
def test_each_built_in_role_permits_what_azure_documents(
    action_string: str, expected: tuple[bool, bool, bool, bool, bool]
) -> None:
    got = tuple(BUILT_IN[name.lower()].permits(action_string) for name in ROLES)
    assert dict(zip(ROLES, got, strict=True)) == dict(zip(ROLES, expected, strict=True))


def test_reader_reads_everything_and_writes_nothing() -> None:
    reader = BUILT_IN["reader"]
    for resource in ("jobs", "models", "data", "environments", "components", "computes", "onlineEndpoints"):
        assert reader.permits(f"{ML}/{resource}/read")
        for verb in ("write", "delete"):
            assert not reader.permits(f"{ML}/{resource}/{verb}")
        assert not reader.permits(f"{ML}/{resource}/listKeys/action")


def test_the_data_scientist_submits_jobs_but_neither_manages_computes_nor_the_workspace() -> None:
    scientist = BUILT_IN["azureml data scientist"]

    assert scientist.permits("Microsoft.MachineLearningServices/workspaces/jobs/write")
    for refused in ("computes/write", "computes/delete", "computes/instances/write", "write", "delete"):
        assert not scientist.permits(f"{ML}/{refused}"), refused


def test_the_compute_operator_creates_computes_but_submits_no_job() -> None:
    operator = BUILT_IN["azureml compute operator"]

    assert operator.permits(f"{ML}/computes/write")
    assert operator.permits(f"{ML}/computes/delete")
    assert not operator.permits(f"{ML}/jobs/write")


def test_only_the_owner_writes_role_assignments() -> None:
    assert BUILT_IN["owner"].permits("Microsoft.Authorization/roleAssignments/write")
    assert not BUILT_IN["contributor"].permits("Microsoft.Authorization/roleAssignments/write")
    assert not BUILT_IN["contributor"].permits("microsoft.authorization/ROLEASSIGNMENTS/WRITE")


# -- custom roles ------------------------------------------------------------------------------------
#: Azure's own example of a custom role (docs: "Manage roles in your workspace").
AZURE_JSON = {
    "Name": "Data Scientist Custom",
    "IsCustom": True,
    "Description": "Can run experiment but can't create or delete compute.",
    "Actions": ["*"],
    "NotActions": [
        "Microsoft.MachineLearningServices/workspaces/*/delete",
        "Microsoft.MachineLearningServices/workspaces/write",
        "Microsoft.MachineLearningServices/workspaces/computes/*/write",
        "Microsoft.MachineLearningServices/workspaces/computes/*/delete",
        "Microsoft.Authorization/*/write",
    ],
    "AssignableScopes": [f"{LONG}/providers/Microsoft.MachineLearningServices/workspaces/ws1"],
}


def test_a_custom_role_is_read_from_azures_json() -> None:
    role = RoleDefinition.model_validate(AZURE_JSON)

    assert role.name == "Data Scientist Custom"
    assert role.is_custom
    assert role.assignable_scopes == ["/workspaces/ws1"]
    assert role.permits(f"{ML}/jobs/write")
    assert role.permits(f"{ML}/jobs/read")
    assert not role.permits(f"{ML}/computes/write")
    assert not role.permits(f"{ML}/models/delete")
    assert not role.permits(f"{ML}/delete")  # `workspaces/*/delete` covers the workspace itself
    assert not role.permits(f"{ML}/write")
    assert not role.permits(f"{AUTH}/roleAssignments/write")


def test_a_custom_role_is_written_back_as_azure_writes_it() -> None:
    role = RoleDefinition.model_validate({**AZURE_JSON, "Id": "4d3d0d2b-role"})
    written = role.to_azure()

    assert written == {**AZURE_JSON, "Id": "4d3d0d2b-role", "AssignableScopes": ["/workspaces/ws1"],
                       "DataActions": [], "NotDataActions": []}  # fmt: skip
    assert RoleDefinition.model_validate(written) == role
    assert "Id" not in RoleDefinition.model_validate(AZURE_JSON).to_azure()


def test_a_custom_role_without_scopes_is_assignable_at_the_server() -> None:
    role = RoleDefinition.model_validate({"Name": "Runner", "Actions": [f"{ML}/jobs/*"], "AssignableScopes": []})

    assert role.assignable_scopes == [SERVER_SCOPE]
    assert role.not_actions == []
    assert role.is_custom


def test_not_actions_beat_actions() -> None:
    role = RoleDefinition.model_validate(
        {"Name": "Jobs but not cancel", "Actions": [f"{ML}/jobs/*"], "NotActions": [f"{ML}/jobs/cancel/action"]}
    )

    assert role.permits(f"{ML}/jobs/write")
    assert not role.permits(f"{ML}/jobs/cancel/action")
    assert not role.permits(f"{ML}/JOBS/CANCEL/ACTION")
    same = RoleDefinition.model_validate({"Name": "Same", "Actions": [f"{ML}/jobs/read"],
                                          "NotActions": [f"{ML}/jobs/read"]})  # fmt: skip
    assert not same.permits(f"{ML}/jobs/read")


def test_a_role_with_no_matching_action_permits_nothing() -> None:
    role = RoleDefinition.model_validate({"Name": "Models", "Actions": [f"{ML}/models/read"]})

    assert role.permits(f"{ML}/models/read")
    assert not role.permits(f"{ML}/jobs/read")


@pytest.mark.parametrize(
    "bad",
    [
        {"Name": "No actions"},
        {"Name": "Spaces", "Actions": ["workspaces/jobs read"]},
        {"Name": "Empty action", "Actions": [""]},
        {"Name": "Odd character", "Actions": ["workspaces/jobs/$read"]},
        {"Name": "Leading slash", "Actions": ["/workspaces/jobs/read"]},
        {"Name": "", "Actions": ["*"]},
        {"Name": "Bad/name", "Actions": ["*"]},
        {"Name": "Bad scope", "Actions": ["*"], "AssignableScopes": ["/workspaces/ws1/jobs/j1"]},
    ],
)
def test_an_invalid_role_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidSpecError):
        RoleDefinition.model_validate(bad)


# -- scopes --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("/", "/"),
        ("/workspaces/ws1", "/workspaces/ws1"),
        ("workspaces/ws1", "/workspaces/ws1"),
        ("/workspaces/ws1/", "/workspaces/ws1"),
        ("  /workspaces/ws1  ", "/workspaces/ws1"),
        ("/Workspaces/My_WS", "/workspaces/My_WS"),
        (f"{LONG}/providers/Microsoft.MachineLearningServices/workspaces/ws1", "/workspaces/ws1"),
        (f"{LONG}/providers/microsoft.machinelearningservices/WORKSPACES/ws1", "/workspaces/ws1"),
        ("/subscriptions/00000000-0000-0000-0000-000000000000", "/"),
        (LONG, "/"),
    ],
)
def test_scope_of_accepts(text: str, scope: str) -> None:
    assert scope_of(text) == scope


@pytest.mark.parametrize(
    "text",
    [
        "/workspaces",
        "/workspaces/ws1/jobs/j1",
        "/workspaces/ws1/computes",
        f"{LONG}/providers/Microsoft.MachineLearningServices/workspaces/ws1/computes/cpu",
        f"{LONG}/providers/Microsoft.MachineLearningServices/workspaces",
        "/jobs",
        "/providers/Microsoft.Management/managementGroups/mg",
    ],
)
def test_scope_of_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="scope"):
        scope_of(text)


def test_scope_of_keeps_a_workspace_named_workspaces() -> None:
    """'workspaces' is a valid workspace name (3 to 33 letters, digits, '-' and '_'), and the server
    checks requests on it at the scope ``/workspaces/workspaces``: an assignment there must be
    possible, in both forms."""
    assert scope_of("/workspaces/workspaces") == "/workspaces/workspaces"
    assert scope_of(f"{LONG}/providers/Microsoft.MachineLearningServices/workspaces/workspaces") == (
        "/workspaces/workspaces"
    )


@pytest.mark.parametrize(
    "text",
    [
        f"{LONG}/providers/Microsoft.Storage/storageAccounts/lake",
        f"{LONG}/providers/Microsoft.MachineLearningServices/registries/shared",
        f"{LONG}/providers/Microsoft.KeyVault/vaults/kv",
    ],
)
def test_scope_of_refuses_another_azure_resource_rather_than_widening_it_to_the_server(text: str) -> None:
    """A role given on one storage account, registry or key vault is not a role on the whole
    server: only a subscription or a resource group stands for the server."""
    with pytest.raises(ValueError, match="scope"):
        scope_of(text)


def test_the_server_covers_every_workspace_and_a_workspace_only_itself() -> None:
    assert covers("/", "/")
    assert covers("/", "/workspaces/ws1")
    assert covers("/workspaces/ws1", "/workspaces/ws1")
    assert covers("/workspaces/ws1", "/WORKSPACES/WS1")
    assert not covers("/workspaces/ws1", "/workspaces/ws2")
    assert not covers("/workspaces/ws1", "/workspaces/ws10")
    assert not covers("/workspaces/ws1", "/")
