"""Compute targets. ``local`` always exists; in embedded mode every compute runs locally."""

from __future__ import annotations

import difflib
import os

from smalt.entities import Compute, CreationContext
from smalt.errors import InvalidStateError, NotFoundError
from smalt.services.provenance import creation_context
from smalt.services.workspace import WorkspaceContext
from smalt.store import NamedRecord

LOCAL = "local"


class ComputeService:
    """Create, read, list and delete compute targets."""

    def __init__(self, workspace: WorkspaceContext) -> None:
        self._ws = workspace

    def _builtin(self) -> Compute:
        # As many jobs at once as the machine has cores, as Ray and multiprocessing default to.
        return Compute(
            name=LOCAL, type="local", description="Processes on this machine.", max_instances=os.cpu_count() or 1,
            creation_context=CreationContext(created_at=self._ws.created_at, created_by="smalt",
                                             created_by_type="System"),
        )  # fmt: skip

    @staticmethod
    def _entity(record: NamedRecord) -> Compute:
        return Compute.model_validate(record.spec).model_copy(update={
            "creation_context": creation_context(record),
        })  # fmt: skip

    def create_or_update(self, compute: Compute) -> Compute:
        if compute.name == LOCAL:
            raise InvalidStateError(
                "'local' is built in and cannot be redefined.", hint="give the compute another name"
            )
        spec = compute.model_copy(update={"creation_context": None}).to_dict()
        with self._ws.store.transaction(write=True) as tx:
            record, _ = tx.computes.upsert(compute.name, compute.type, spec, self._ws.user)
        return self._entity(record)

    def get(self, name: str) -> Compute:
        if name == LOCAL:
            return self._builtin()
        with self._ws.store.transaction() as tx:
            record = tx.computes.get(name)
            names = [] if record else [r.name for r in tx.computes.list()]
        if record is None:
            close = difflib.get_close_matches(name, [*names, LOCAL], n=1)
            meant = f" Did you mean '{close[0]}'?" if close else ""
            raise NotFoundError(
                f"Compute '{name}' not found.{meant} Computes: {', '.join([LOCAL, *names])}.",
                hint=f"smalt compute create --name {name} --type amlcompute",
            )
        return self._entity(record)

    def list(self) -> list[Compute]:
        with self._ws.store.transaction() as tx:
            return [self._builtin(), *(self._entity(r) for r in tx.computes.list())]

    def delete(self, name: str) -> None:
        if name == LOCAL:
            raise InvalidStateError("'local' is built in and cannot be deleted.")
        self.get(name)
        with self._ws.store.transaction(write=True) as tx:
            tx.computes.delete(name)
