"""The store contract on SQLite, the workspace's own database file."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from store_contract import StoreContract

from smalt import MLClient
from smalt.services import WorkspaceContext


class TestSqliteStore(StoreContract):
    def test_the_database_is_a_file_in_the_workspace_in_wal_mode(
        self, client: MLClient, context: WorkspaceContext, workspace_path: Path
    ) -> None:
        assert context.database_url == f"sqlite:///{workspace_path / 'metadata.db'}"
        assert (workspace_path / "metadata.db").is_file()
        with context.store.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
