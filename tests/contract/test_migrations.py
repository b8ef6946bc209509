"""The migrations and the schema they make, on SQLite and on PostgreSQL."""

from __future__ import annotations

import gc
import time
import warnings
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from smalt.errors import ConfigurationError
from smalt.services import open_workspace
from smalt.store import SqlMetadataStore
from smalt.store.migrate import HEAD, MIGRATIONS
from smalt.store.tables import metadata

MIGRATIONS_FOLDER = Path(__file__).resolve().parents[2] / "src" / "smalt" / "store" / "migrations"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'metadata.db'}"


def _script() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_FOLDER))
    return ScriptDirectory.from_config(config)


def test_head_in_the_code_is_the_head_of_the_migration_scripts() -> None:
    script = _script()

    assert script.get_heads() == [HEAD], "store/migrate.py HEAD must name the newest migration in versions/"
    assert MIGRATIONS.resolve() == MIGRATIONS_FOLDER  # the folder the store applies is the one checked here


def test_schema_after_migrations_matches_the_tables_module(database_url: str) -> None:
    store = SqlMetadataStore(database_url)
    try:
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        store.close()

    assert differences == [], (
        "store/tables.py and the migrations disagree; write a migration for the change "
        "(alembic revision --autogenerate) and move HEAD in store/migrate.py:\n" + "\n".join(map(repr, differences))
    )


def test_opening_applies_every_migration_once(database_url: str) -> None:
    SqlMetadataStore(database_url).close()
    store = SqlMetadataStore(database_url)
    try:
        with store.engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            revisions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    finally:
        store.close()

    assert tables == {*metadata.tables, "alembic_version"}
    assert revisions == [HEAD]


def _stamp_newer(url: str) -> None:
    store = SqlMetadataStore(url)
    try:
        with store.transaction(write=True) as tx:
            tx.assets.create_version("data", "iris", None, {"path": "x", "type": "uri_file"}, "d1", "me")
        with store.engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    finally:
        store.close()


def _snapshot(url: str) -> tuple[list[str], list[str], set[str]]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            revisions = list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
            versions = list(connection.execute(text("SELECT name || ':' || version FROM asset_versions")).scalars())
            tables = set(inspect(connection).get_table_names())
        return revisions, versions, tables
    finally:
        engine.dispose()


def _forget_refused_store() -> None:
    """Collect the engine a refused open left behind, without its unclosed-connection warnings.

    Those warnings are a bug of their own, shown by test_a_refused_open_leaves_no_connection_open;
    here they would otherwise surface later, in whichever test the garbage collector runs.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def test_a_database_from_a_newer_smalt_is_refused_and_left_alone(database_url: str) -> None:
    _stamp_newer(database_url)
    before = _snapshot(database_url)

    with pytest.raises(ConfigurationError) as raised:
        SqlMetadataStore(database_url)
    message = str(raised.value)
    del raised
    _forget_refused_store()

    assert "9999_from_the_future" in message
    assert "upgrade smalt" in message
    assert _snapshot(database_url) == before
    assert before[0] == ["9999_from_the_future"]


def test_a_workspace_on_a_newer_database_is_refused(
    database_url: str, workspace_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMALT_DATABASE_URL", database_url)
    open_workspace(workspace_path).close()
    _stamp_newer(database_url)

    try:
        with pytest.raises(ConfigurationError, match="upgrade smalt"):
            open_workspace(workspace_path)
    finally:
        _forget_refused_store()


def _connections(engine: Engine, database: str) -> int:
    with engine.connect() as connection:
        count = connection.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"),
            {"db": database},
        ).scalar()
    return int(count or 0)


@pytest.mark.postgres
def test_a_refused_open_leaves_no_connection_open(postgres_url: str) -> None:
    _stamp_newer(postgres_url)
    database = make_url(postgres_url).database
    engine = create_engine(postgres_url, poolclass=NullPool)
    try:
        with pytest.raises(ConfigurationError):
            SqlMetadataStore(postgres_url)
        # The failed store is still referenced by the traceback, as in a caller that logs it.
        # A closed connection's server process ends a moment after the client hangs up: poll.
        deadline = time.monotonic() + 5
        while (left := _connections(engine, str(database))) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert left == 0, f"a store that failed to open keeps {left} pooled connection(s) open"
    finally:
        engine.dispose()
        _forget_refused_store()


@pytest.mark.postgres
def test_one_postgresql_database_holds_workspaces_each_in_a_schema_of_its_own(postgres_url: str) -> None:
    """A team server's workspaces share its database: each store migrates and uses its own schema,
    names with capitals and dashes included, and sees nothing of the others'."""
    from smalt.store import schema_url

    stores = {name: SqlMetadataStore(schema_url(postgres_url, f"smalt_{name}")) for name in ("Team-A", "team_b")}
    try:
        with stores["Team-A"].transaction(write=True) as tx:
            tx.computes.upsert("gpu", "amlcompute", {"name": "gpu"}, "me")
        with stores["team_b"].transaction() as tx:
            assert tx.computes.get("gpu") is None
        with stores["Team-A"].transaction() as tx:
            assert tx.computes.get("gpu") is not None
        engine = create_engine(postgres_url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                where = dict(connection.execute(text(
                    "SELECT table_schema, count(*) FROM information_schema.tables "
                    "WHERE table_name IN ('jobs', 'alembic_version') GROUP BY table_schema"
                )).all())  # fmt: skip
        finally:
            engine.dispose()
        assert where == {"smalt_Team-A": 2, "smalt_team_b": 2}  # nothing in public
        # Opened again (a job's process, a restarted server): at HEAD, nothing to make.
        SqlMetadataStore(schema_url(postgres_url, "smalt_Team-A")).close()
    finally:
        for store in stores.values():
            store.close()
