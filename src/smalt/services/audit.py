"""The audit log: every change and every denied request, with who, which action, which resource,
the outcome, when, the request id and the client's address. It is appended to and read; nothing
changes or removes an entry through the API.

A server keeps one log, in its own workspace's store; each entry names the workspace it was about.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from smalt.entities.identity import AuditEntry
from smalt.services.workspace import WorkspaceContext, origin
from smalt.store import Transaction

#: The most entries one list answers.
MAX_ENTRIES = 10_000


def entry(context: WorkspaceContext, action: str, resource: str, *, outcome: str = "succeeded", status: int = 200,
          workspace: str | None = None, principal: str | None = None) -> dict[str, Any]:  # fmt: skip
    """One entry's row, for the request under way (``services.workspace.origin``) or, outside a
    request, for this process (``cli``, ``local``)."""
    request_id, client = origin.get() or ("cli", "local")
    return {
        "at": datetime.now(UTC), "principal": (principal or context.user)[:255], "action": action[:512],
        "resource": resource[:1024], "outcome": outcome, "status": status, "request_id": request_id[:64],
        "client": client[:255], "workspace": workspace,
    }  # fmt: skip


def append(tx: Transaction, *entries: dict[str, Any]) -> None:
    """Append ``entries`` inside ``tx``: a change and its entry are committed together."""
    tx.access.append_audit(list(entries))


class AuditService:
    def __init__(self, workspace: WorkspaceContext) -> None:
        self._ws = workspace

    def record(self, *entries: dict[str, Any]) -> None:
        with self._ws.store.transaction(write=True) as tx:
            append(tx, *entries)

    def list(self, *, since: datetime | None = None, principal: str | None = None, action: str | None = None,
             max_results: int = 1000) -> list[AuditEntry]:  # fmt: skip
        """The newest entries first; ``action`` matches as a prefix (``Microsoft.Authorization/``)."""
        with self._ws.store.transaction() as tx:
            rows = tx.access.audit(since=since, principal=principal, action=action,
                                   limit=max(1, min(max_results, MAX_ENTRIES)))  # fmt: skip
        return [AuditEntry(id=r.id, at=r.at, principal=r.principal, action=r.action, resource=r.resource,
                           outcome=r.outcome, status=r.status, request_id=r.request_id, client=r.client,
                           workspace=r.workspace) for r in rows]  # fmt: skip
