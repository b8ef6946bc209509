"""Every difference between SQLite and PostgreSQL lives here, and nowhere else."""

from __future__ import annotations

import sqlite3
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.sql.dml import Insert

from smalt.errors import ConfigurationError

_SQLITE_BUSY_MS = 60_000


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str) -> Engine:
    """An engine for ``url``: SQLite in WAL mode with write transactions that lock at BEGIN."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # A pool keeps connections open: opening one per transaction cost a connect, its pragmas and,
        # on closing the last one, a WAL checkpoint (about half the time of a tracking write).
        connect = {"timeout": _SQLITE_BUSY_MS / 1000, "check_same_thread": False}
        engine = create_engine(url, pool_size=4, max_overflow=8, connect_args=connect)
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        return create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=4)
    raise ConfigurationError(
        f"Unsupported database URL scheme {parsed.drivername!r}.",
        hint="use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB in SMALT_DATABASE_URL",
    )


def schema_url(url: str, schema: str) -> str:
    """``url``, a PostgreSQL database, with each connection's ``search_path`` set to ``schema``
    alone: one database holds many workspaces, each in a schema of its own (made on first open)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ConfigurationError(f"Only a PostgreSQL database holds workspaces in schemas, not {redact(url)}.")
    return parsed.update_query_dict({"options": f"-csearch_path={_quoted(schema)}"}).render_as_string(
        hide_password=False
    )


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _schema(engine: Engine) -> str | None:
    """The one schema ``schema_url`` named in the engine's URL, if any."""
    options = engine.url.query.get("options")
    prefix = '-csearch_path="'
    if not isinstance(options, str) or not options.startswith(prefix) or not options.endswith('"'):
        return None
    return options[len(prefix) : -1].replace('""', '"')


def prepare_database(engine: Engine) -> None:
    """Make what must exist before the migrations run: on PostgreSQL, the workspace's schema."""
    schema = _schema(engine) if not is_sqlite(engine) else None
    if schema is None:
        return
    with engine.connect() as connection, migration_lock(engine, connection):  # two first opens at once
        connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {_quoted(schema)}"))
        connection.commit()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the sqlite3 module so that BEGIN is ours to write.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
        # FULL: a commit that returned survives a power cut too, not only a killed process.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # MLflow's LIKE is case-sensitive (as on PostgreSQL); SQLite's is not unless told so.
        cursor.execute("PRAGMA case_sensitive_like=ON")
        # WAL is a property of the file, set once under the migration lock (see migration_lock):
        # switching modes on every connect races with other processes opening the same file.
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A write transaction that starts deferred and upgrades later can fail at once with
        # SQLITE_BUSY when another writer got in first; IMMEDIATE waits for the lock instead.
        options = connection.get_execution_options()
        if options.get("smalt_write"):
            # See relaxed(): NORMAL still survives a killed process; the WAL reaches the disk at
            # the next FULL commit or checkpoint.
            connection.exec_driver_sql(f"PRAGMA synchronous={'NORMAL' if options.get('smalt_relaxed') else 'FULL'}")
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


def relax_durability(connection: Connection) -> None:
    """For high-rate tracking writes: commit without waiting for the disk (PostgreSQL's
    ``synchronous_commit=off`` for this transaction; SQLite's ``synchronous=NORMAL`` is set at BEGIN).

    A killed smalt process loses nothing it committed; only an operating-system crash or power cut
    can lose the last moments of such writes, and never corrupts the database.
    """
    if not is_sqlite(connection):
        connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")


def _insert(engine: Engine | Connection, table: Table) -> Any:
    """The dialect's own INSERT (it knows ON CONFLICT). Imported here: the PostgreSQL dialect
    alone costs a SQLite-only command about 50 ms to import."""
    if is_sqlite(engine):
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)
    from sqlalchemy.dialects import postgresql

    return postgresql.insert(table)


def insert_ignoring_conflicts(engine: Engine | Connection, table: Table) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING, in the dialect's own words."""
    statement: Insert = _insert(engine, table).on_conflict_do_nothing()
    return statement


def upsert_by_name(engine: Engine | Connection, table: Table, values: dict[str, Any], keep: tuple[str, ...]) -> Insert:
    """INSERT, or on a name that exists UPDATE every column but ``keep`` (race-free on both)."""
    statement = _insert(engine, table).values(**values)
    changes = {k: statement.excluded[k] for k in values if k not in keep and k != "name"}
    upsert: Insert = statement.on_conflict_do_update(index_elements=["name"], set_=changes)
    return upsert


def upsert(engine: Engine | Connection, table: Table, keys: tuple[str, ...], update_columns: tuple[str, ...]) -> Insert:
    """INSERT, or on a conflict of ``keys`` UPDATE ``update_columns``."""
    statement = _insert(engine, table)
    changes = {k: statement.excluded[k] for k in update_columns}
    upsert: Insert = statement.on_conflict_do_update(index_elements=list(keys), set_=changes)
    return upsert


@contextmanager
def migration_lock(engine: Engine, connection: Connection) -> Iterator[None]:
    """Serialise migrations between processes opening the same database at once."""
    if is_sqlite(engine):
        from filelock import FileLock

        database = engine.url.database or ""
        if not database or database == ":memory:":
            yield
            return
        with FileLock(f"{database}.migrate.lock", timeout=120):
            _enable_wal(connection)
            yield
        return
    key = zlib.crc32(b"smalt-migrations")
    connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
    try:
        yield
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        connection.commit()


def _enable_wal(connection: Connection) -> None:
    # Changing the journal mode needs the file to itself, and SQLite may answer "locked" at once
    # instead of waiting while other processes are reading; so wait here, up to the busy timeout.
    deadline = time.monotonic() + _SQLITE_BUSY_MS / 1000
    while True:
        try:
            # On the DBAPI connection: the pragma must run outside any transaction.
            raw = connection.connection.driver_connection
            assert raw is not None
            raw.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def redact(url: str) -> str:
    """The URL with any password hidden, for display."""
    return make_url(url).render_as_string(hide_password=True)
