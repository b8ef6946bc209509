"""Alembic migrations, applied when a store is opened; forward only."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from smalt.errors import ConfigurationError
from smalt.store.dialects import migration_lock, prepare_database

#: The newest revision in migrations/versions; a unit test keeps the two in step.
HEAD = "0009"
MIGRATIONS = Path(__file__).with_name("migrations")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> None:
    """Bring the database to HEAD. Cheap when it is there already: alembic is not even imported."""
    try:
        if current_revision(engine) == HEAD:
            return
        prepare_database(engine)
        from alembic import command
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        known = {rev.revision for rev in ScriptDirectory.from_config(config).walk_revisions()}
        with engine.connect() as connection, migration_lock(engine, connection):
            revision = current_revision(engine)
            if revision is not None and revision not in known:
                raise ConfigurationError(
                    f"The database is at schema revision {revision!r}, newer than this smalt knows (up to {HEAD!r}).",
                    hint="upgrade smalt; migrations only go forward",
                )
            if revision != HEAD:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                connection.commit()
    except SQLAlchemyError as exc:
        raise ConfigurationError(
            f"Cannot open the metadata database: {exc.__class__.__name__}: {exc}".splitlines()[0],
            hint="check SMALT_DATABASE_URL, or that the workspace folder is writable",
        ) from exc
