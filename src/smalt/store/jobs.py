"""Jobs in the metadata store: one row per job, its status moved by compare-and-set."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.engine import Connection

from smalt.store.records import utc
from smalt.store.tables import jobs


@dataclass(frozen=True)
class JobRecord:
    name: str
    type: str
    status: str
    display_name: str | None
    experiment_name: str
    experiment_id: int
    parent_name: str | None
    compute: str
    spec: dict[str, Any]
    error: dict[str, Any] | None
    supervisor_pid: int | None
    heartbeat_at: datetime | None
    start_time: datetime | None
    end_time: datetime | None
    archived: bool
    created_at: datetime
    created_by: str
    last_modified_at: datetime
    reuse_key: str | None = None


def _opt(value: datetime | None) -> datetime | None:
    return utc(value) if value is not None else None


def _record(row: Row[*tuple[Any, ...]]) -> JobRecord:
    return JobRecord(
        name=row.name, type=row.type, status=row.status, display_name=row.display_name,
        experiment_name=row.experiment_name, experiment_id=row.experiment_id, parent_name=row.parent_name,
        compute=row.compute, spec=row.spec, error=row.error,
        supervisor_pid=row.supervisor_pid, heartbeat_at=_opt(row.heartbeat_at),
        start_time=_opt(row.start_time), end_time=_opt(row.end_time), archived=row.archived,
        created_at=utc(row.created_at), created_by=row.created_by,
        last_modified_at=utc(row.last_modified_at), reuse_key=row.reuse_key,
    )  # fmt: skip


class JobRepository:
    """Job rows inside the caller's transaction."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def create(self, name: str, type_: str, status: str, display_name: str | None, experiment_name: str,
               compute: str, spec: dict[str, Any], created_by: str, *, experiment_id: int = 0,
               parent_name: str | None = None) -> JobRecord:  # fmt: skip
        now = datetime.now(UTC)
        self._connection.execute(
            jobs.insert().values(
                name=name, type=type_, status=status, display_name=display_name,
                experiment_name=experiment_name, experiment_id=experiment_id, parent_name=parent_name,
                compute=compute, spec=spec, archived=False,
                created_at=now, created_by=created_by, last_modified_at=now,
            )
        )  # fmt: skip
        record = self.get(name)
        assert record is not None
        return record

    def get(self, name: str) -> JobRecord | None:
        row = self._connection.execute(select(jobs).where(jobs.c.name == name)).first()
        return _record(row) if row is not None else None

    def many(self, names: Iterable[str]) -> list[JobRecord]:
        wanted = list(names)
        found: list[JobRecord] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found.extend(_record(r) for r in self._connection.execute(select(jobs).where(jobs.c.name.in_(chunk))))
        return found

    def status(self, name: str) -> str | None:
        """The job's status alone; None when there is no such job (no spec to parse: for loops)."""
        found = self._connection.execute(select(jobs.c.status).where(jobs.c.name == name)).first()
        return str(found[0]) if found is not None else None

    def archived(self, name: str) -> bool | None:
        """Whether the job is archived; None when there is no such job (a cheap check for hot paths)."""
        found = self._connection.execute(select(jobs.c.archived).where(jobs.c.name == name)).first()
        return bool(found[0]) if found is not None else None

    def exists(self, name: str) -> bool:
        return self._connection.execute(select(jobs.c.name).where(jobs.c.name == name)).first() is not None

    def search(self, *, status: str | None = None, experiment_name: str | None = None,
               type_: str | Iterable[str] | None = None, parent_name: str | None = None, top_level: bool = False,
               include_archived: bool = False, limit: int | None = None) -> list[JobRecord]:  # fmt: skip
        """Jobs, newest first; ``parent_name``: the steps of that pipeline; ``top_level``: no steps."""
        query = select(jobs)
        if isinstance(type_, str):
            query = query.where(jobs.c.type == type_)
        elif type_ is not None:
            query = query.where(jobs.c.type.in_(list(type_)))
        if parent_name is not None:
            query = query.where(jobs.c.parent_name == parent_name)
        elif top_level:
            query = query.where(jobs.c.parent_name.is_(None))
        if status is not None:
            query = query.where(jobs.c.status == status)
        if experiment_name is not None:
            query = query.where(jobs.c.experiment_name == experiment_name)
        if not include_archived:
            query = query.where(jobs.c.archived.is_(False))
        query = query.order_by(jobs.c.created_at.desc(), jobs.c.name.desc())
        if limit is not None:
            query = query.limit(limit)
        return [_record(r) for r in self._connection.execute(query).all()]

    def children(self, parent_name: str) -> list[JobRecord]:
        """The steps of a pipeline, oldest first."""
        query = select(jobs).where(jobs.c.parent_name == parent_name).order_by(jobs.c.created_at, jobs.c.name)
        return [_record(r) for r in self._connection.execute(query)]

    def step_statuses(self, parent_name: str) -> list[tuple[str, str, str]]:
        """(name, display name, status) of each step of a pipeline, oldest first: what following a
        pipeline needs every time it looks, without any step's spec to parse."""
        query = (select(jobs.c.name, jobs.c.display_name, jobs.c.status).where(jobs.c.parent_name == parent_name)
                 .order_by(jobs.c.created_at, jobs.c.name))  # fmt: skip
        return [(str(r.name), str(r.display_name or r.name), str(r.status)) for r in self._connection.execute(query)]

    def with_reuse_key(self, key: str, status: str) -> list[JobRecord]:
        """Jobs with this reuse key in ``status``, newest first."""
        query = (
            select(jobs).where(jobs.c.reuse_key == key, jobs.c.status == status, jobs.c.archived.is_(False))
            .order_by(jobs.c.end_time.desc())
        )  # fmt: skip
        return [_record(r) for r in self._connection.execute(query)]

    def earlier_steps(self, experiment_id: int, display_name: str, before: datetime, limit: int = 1) -> list[JobRecord]:
        """The latest ``limit`` pipeline steps of the experiment with this step name created before ``before``."""
        query = (
            select(jobs)
            .where(jobs.c.experiment_id == experiment_id, jobs.c.display_name == display_name,
                   jobs.c.parent_name.is_not(None), jobs.c.created_at < before)
            .order_by(jobs.c.created_at.desc()).limit(limit)
        )  # fmt: skip
        return [_record(r) for r in self._connection.execute(query)]

    def in_states(self, states: Iterable[str]) -> list[JobRecord]:
        rows = self._connection.execute(select(jobs).where(jobs.c.status.in_(list(states)))).all()
        return [_record(r) for r in rows]

    def transition(self, name: str, to: str, *, only_from: Iterable[str] | None = None,
                   **values: Any) -> bool:  # fmt: skip
        """Set the status (and other columns) if the job is in one of ``only_from``; True if it was."""
        statement = update(jobs).where(jobs.c.name == name)
        if only_from is not None:
            statement = statement.where(jobs.c.status.in_(list(only_from)))
        result = self._connection.execute(statement.values(status=to, last_modified_at=datetime.now(UTC), **values))
        return bool(result.rowcount)

    def claim(self, name: str, pid: int | None, *, holder: int | None, beat_before: datetime | None = None,
              only_from: Iterable[str] | None = None, **values: Any) -> bool:  # fmt: skip
        """Record ``pid`` as the process that owns the job (its supervisor, its driver; None: nobody
        yet), and ``values``, if ``holder`` owns it now (None: nobody), with ``beat_before`` its
        heartbeat is older than that, and with ``only_from`` its status is one of those (a reaper
        takes over a job only in the state it saw: one that finished meanwhile is left alone).
        Compare-and-set: of two processes that claim a job, one wins."""
        owner = jobs.c.supervisor_pid
        statement = update(jobs).where(jobs.c.name == name, owner.is_(None) if holder is None else owner == holder)
        if beat_before is not None:
            statement = statement.where(jobs.c.heartbeat_at < beat_before)
        if only_from is not None:
            statement = statement.where(jobs.c.status.in_(list(only_from)))
        return bool(self._connection.execute(statement.values(supervisor_pid=pid, **values)).rowcount)

    def touch(self, name: str, **values: Any) -> None:
        """Update columns other than the status (heartbeat, pid, spec)."""
        self._connection.execute(update(jobs).where(jobs.c.name == name).values(**values))
