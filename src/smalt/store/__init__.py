"""The metadata store: SQLAlchemy and Alembic live here and nowhere else.

``SqlMetadataStore`` is the one implementation of the store; services open a ``transaction()`` and
use its repositories (``assets``, ``datastores``, ``computes``), which hand back plain records.
"""

from smalt.store.records import AssetContainerRecord, AssetVersionRecord, NamedRecord
from smalt.store.secrets import SecretBox
from smalt.store.sql import SqlMetadataStore, Transaction

MetadataStore = SqlMetadataStore

__all__ = [
    "AssetContainerRecord",
    "AssetVersionRecord",
    "MetadataStore",
    "NamedRecord",
    "SecretBox",
    "SqlMetadataStore",
    "Transaction",
]
