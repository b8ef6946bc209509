"""The metadata store: SQLAlchemy and Alembic live here and nowhere else.

``SqlMetadataStore`` is the one implementation of the store; services open a ``transaction()`` and
use its repositories (``assets``, ``datastores``, ``computes``), which hand back plain records.
"""

from contextlib import AbstractContextManager
from typing import Protocol

from smalt.store.dialects import schema_url
from smalt.store.endpoints import DeploymentRecord, EndpointRecord
from smalt.store.jobs import JobRecord
from smalt.store.lineage import Edge
from smalt.store.records import AssetContainerRecord, AssetVersionRecord, NamedRecord
from smalt.store.secrets import SecretBox
from smalt.store.sql import SqlMetadataStore, Transaction


class MetadataStore(Protocol):
    """What services need of a metadata store: transactions over its repositories.

    ``get``-style repository methods return None when a thing is missing (services turn that into
    NotFoundError with a hint); lists are ordered (names ascending, versions newest first).
    """

    @property
    def display_url(self) -> str: ...

    def transaction(self, *, write: bool = False, durable: bool = True) -> AbstractContextManager[Transaction]: ...

    def release_connections(self) -> None: ...

    def close(self) -> None: ...


__all__ = [
    "AssetContainerRecord",
    "AssetVersionRecord",
    "DeploymentRecord",
    "Edge",
    "EndpointRecord",
    "JobRecord",
    "MetadataStore",
    "NamedRecord",
    "SecretBox",
    "SqlMetadataStore",
    "Transaction",
    "schema_url",
]
