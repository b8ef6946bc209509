"""Workspace connections: their secrets sealed at rest with the workspace's key, never in a show or
list; reading them is its own audited action (``list_secrets``, and each injection into a job or
deployment)."""

from __future__ import annotations

import builtins
import difflib

from smalt.entities.connection import WorkspaceConnection, inject, references
from smalt.errors import InvalidSpecError, NotFoundError, SpecProblem
from smalt.services import audit
from smalt.services.provenance import creation_context
from smalt.services.workspace import WorkspaceContext
from smalt.store import NamedRecord

#: The action reading a connection's secrets is audited under, as Azure names it.
LIST_SECRETS = "Microsoft.MachineLearningServices/workspaces/connections/listsecrets/action"


class ConnectionService:
    def __init__(self, workspace: WorkspaceContext) -> None:
        self._ws = workspace

    def create_or_update(self, connection: WorkspaceConnection) -> WorkspaceConnection:
        """Create or replace a connection; what comes back holds no secret."""
        secrets = connection.secret_values()
        if not secrets:
            raise InvalidSpecError.one(f"A {connection.type} connection needs a secret: "
                                       f"{'secrets' if connection.type == 'custom' else 'api_key'}.",
                                       "secrets" if connection.type == "custom" else "api_key")  # fmt: skip
        sealed = self._ws.secrets.seal(secrets)
        public = connection.shown().model_copy(update={"creation_context": None})
        with self._ws.store.transaction(write=True) as tx:
            record, _ = tx.connections.upsert(public.name, public.type, public.to_dict(), self._ws.user, secrets=sealed)
        return _entity(record)

    def get(self, name: str) -> WorkspaceConnection:
        return _entity(self._record(name))

    def list(self) -> list[WorkspaceConnection]:
        with self._ws.store.transaction() as tx:
            return [_entity(r) for r in tx.connections.list()]

    def delete(self, name: str) -> None:
        with self._ws.store.transaction(write=True) as tx:
            if not tx.connections.delete(name):
                raise _not_found(name, [r.name for r in tx.connections.list()])

    def list_secrets(self, name: str, *, reader: str | None = None) -> dict[str, str]:
        """The connection's secrets, by key; recorded in the audit log as read by ``reader``
        (default: the caller)."""
        record = self._record(name)
        found = self._ws.secrets.open(record.secrets) if record.secrets else {}
        with self._ws.store.transaction(write=True) as tx:
            audit.append(tx, audit.entry(self._ws, LIST_SECRETS, f"/connections/{name}", principal=reader,
                                         workspace=self._ws.name))  # fmt: skip
        return found

    def check_references(self, values: dict[str, str], field: str) -> None:
        """Refuse ``values`` (``environment_variables``) naming a connection or key that is not there,
        saying which variable (``<field>.<variable>``)."""
        wanted = references(values)
        if not wanted:
            return
        with self._ws.store.transaction() as tx:
            records = {r.name: r for r in tx.connections.list()}
        problems = []
        opened: dict[str, dict[str, str]] = {}
        for variable, name, key in wanted:
            record = records.get(name)
            if record is not None and name not in opened:
                opened[name] = self._ws.secrets.open(record.secrets) if record.secrets else {}
            if record is None:
                close = difflib.get_close_matches(name, list(records), n=1)
                meant = f"; did you mean '{close[0]}'?" if close else ""
                problems.append(SpecProblem(f"connection '{name}' not found{meant}", f"{field}.{variable}"))
            elif key not in opened[name]:
                problems.append(SpecProblem(f"connection '{name}' has no credential '{key}'", f"{field}.{variable}"))
        if problems:
            raise InvalidSpecError(problems, summary="A secret reference cannot be resolved",
                                   hint="smalt connection list; smalt connection show --name <name>")  # fmt: skip

    def injected(self, values: dict[str, str], *, reader: str) -> tuple[dict[str, str], builtins.list[str]]:
        """``values`` with each connection reference replaced by its secret, and the secrets used
        (for redaction); each connection read once, recorded as read by ``reader``."""
        opened: dict[str, dict[str, str]] = {}

        def secret(name: str, key: str) -> str:
            if name not in opened:
                opened[name] = self.list_secrets(name, reader=reader)
            if key not in opened[name]:
                raise InvalidSpecError.one(f"connection '{name}' has no credential '{key}'", "environment_variables")
            return opened[name][key]

        if not references(values):
            return values, []
        filled = inject(values, secret)
        return filled, [v for found in opened.values() for v in found.values()]

    def _record(self, name: str) -> NamedRecord:
        with self._ws.store.transaction() as tx:
            record = tx.connections.get(name)
            names = [] if record is not None else [r.name for r in tx.connections.list()]
        if record is None:
            raise _not_found(name, names)
        return record


def _entity(record: NamedRecord) -> WorkspaceConnection:
    return WorkspaceConnection.model_validate({**record.spec, "creation_context": creation_context(record)})


def _not_found(name: str, names: list[str]) -> NotFoundError:
    close = difflib.get_close_matches(name, names, n=1)
    meant = f" Did you mean '{close[0]}'?" if close else ""
    return NotFoundError(f"Connection '{name}' not found.{meant} Connections: {', '.join(names) or 'none'}.",
                         hint="smalt connection list")  # fmt: skip

