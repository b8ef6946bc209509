"""The audit log over REST: ``GET /api/v1/audit``, newest first. Nothing changes it through the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from smalt.server.access import AccessControl, requires

router = APIRouter(tags=["audit"])

#: Reading the log is reading Azure's activity log.
READ = "Microsoft.Insights/eventtypes/values/read"


@router.get("/audit", dependencies=[requires(READ, scope="server")])
def list_audit(
    request: Request, since: datetime | None = None, principal: Annotated[str | None, Query(max_length=255)] = None,
    action: Annotated[str | None, Query(max_length=512)] = None,
    max_results: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[dict[str, Any]]:  # fmt: skip
    """Entries since a time, by a principal, or of actions starting with ``action``."""
    control: AccessControl = request.app.state.access
    return [e.to_dict() for e in control.audit.list(since=since, principal=principal, action=action,
                                                   max_results=max_results)]  # fmt: skip
