"""A bounded schemathesis run over the whole OpenAPI document (issue 17): nothing a client can
send, however malformed or out of range, makes the server answer 5xx or "Internal error". Run twice:
with authentication off, and on with an Owner's valid token (issue 20), so that every request also
passes authentication, the route's authorization check and the audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error


@schemathesis.serializer("application/x-tar")
def _archive(_context: Any, value: Any) -> bytes:
    # A job submission's body: whatever bytes were generated, sent as they are.
    return value if isinstance(value, bytes) else str(value).encode()


#: Examples per operation: enough to reach each parameter's bounds, few enough for CI.
EXAMPLES = 30
#: With authentication on, the inputs are those above and only the path behind them differs (the
#: token's check, the route's authorization, the audit log): fewer examples keep CI's time down
#: (measured in one session: with 30, 38 s beside the first run's 43 s; with 15, 18 s beside 35 s).
EXAMPLES_AUTHENTICATED = 15


@pytest.mark.slow
@pytest.mark.parametrize("authenticated", [False, True], ids=["auth-off", "owner-token"])
def test_no_request_makes_the_server_fail(tmp_path: Path, authenticated: bool) -> None:
    from smalt.server.access import AccessControl
    from smalt.server.app import create_app
    from smalt.services.identities import Caller, IdentityService
    from smalt.services.roles import RoleService
    from smalt.services.workspace import open_workspace

    workspace = open_workspace(tmp_path / "ws")
    failures: dict[str, str] = {}
    headers: dict[str, str] = {}
    examples = EXAMPLES
    try:
        if authenticated:
            identities = IdentityService(workspace)
            owner = identities.create_user("owner", "owner-password-1")
            RoleService(workspace).assign("owner", "Owner", "/")
            headers["Authorization"] = f"Bearer {identities.issue(Caller(owner.name, owner.id)).access_token}"
            examples = EXAMPLES_AUTHENTICATED
        app = create_app(workspace, access=AccessControl(workspace, enabled=authenticated))
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) > 50  # the whole document: MLflow's protocol and smalt's API

        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck),
                      database=None, derandomize=True)  # fmt: skip
            def call(case: Any) -> None:
                response = case.call(headers=headers)
                # The token is taken everywhere: a walk answered 401 would test nothing behind it.
                assert not (authenticated and response.status_code == 401), "the Owner's token was refused"
                case.validate_response(response, checks=[not_a_server_error])

            try:
                call()
            except Exception as exc:  # noqa: BLE001 - every operation's failure is reported at once
                failures[operation.label] = str(exc).strip().splitlines()[0][:300]
    finally:
        workspace.close()
    assert not failures, "\n".join(f"{label}: {why}" for label, why in failures.items())
