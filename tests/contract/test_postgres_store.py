"""The store contract on PostgreSQL (``SMALT_DATABASE_URL``), one fresh database per test."""

from __future__ import annotations

import pytest
from store_contract import StoreContract


@pytest.mark.postgres
class TestPostgresStore(StoreContract):
    @pytest.fixture
    def database_url(self, postgres_url: str) -> str | None:
        return postgres_url
