"""The SQL implementation of the metadata store (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from smalt.errors import BackendError, SmaltError
from smalt.store.access import AccessRepository
from smalt.store.assets import AssetRepository
from smalt.store.dialects import make_engine, redact, relax_durability
from smalt.store.endpoints import EndpointRepository
from smalt.store.jobs import JobRepository
from smalt.store.lineage import LineageRepository
from smalt.store.migrate import upgrade
from smalt.store.named import NamedRepository, compute_repository, connection_repository, datastore_repository
from smalt.store.tracking import TrackingRepository


class Transaction:
    """The repositories of one database transaction; it commits when the ``with`` block ends."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.assets = AssetRepository(connection)
        self.datastores: NamedRepository = datastore_repository(connection)
        self.computes: NamedRepository = compute_repository(connection)
        self.connections: NamedRepository = connection_repository(connection)
        self.jobs = JobRepository(connection)
        self.tracking = TrackingRepository(connection)
        self.lineage = LineageRepository(connection)
        self.endpoints = EndpointRepository(connection)
        self.access = AccessRepository(connection)


class SqlMetadataStore:
    """SQLAlchemy-backed store. Opening it applies any pending migration.

    Example::

        store = SqlMetadataStore("sqlite:////home/me/.smalt/default/metadata.db")
        with store.transaction(write=True) as tx:
            tx.assets.create_version("data", "iris", None, {...}, digest, "me")
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        try:
            upgrade(self.engine)
        except BaseException:
            self.engine.dispose()  # a refused open leaves no connection behind
            raise
        self._writer = self.engine.execution_options(smalt_write=True)
        self._relaxed = self.engine.execution_options(smalt_write=True, smalt_relaxed=True)

    @property
    def display_url(self) -> str:
        return redact(self.url)

    @contextmanager
    def transaction(self, *, write: bool = False, durable: bool = True) -> Iterator[Transaction]:
        """One transaction; ``write=True`` takes the write lock at once on SQLite. ``durable=False``
        (tracking's metrics, params and tags) commits without waiting for the disk: see
        ``dialects.relax_durability``."""
        engine = self._relaxed if write and not durable else self._writer if write else self.engine
        try:
            with engine.begin() as connection:
                if write and not durable:
                    relax_durability(connection)
                yield Transaction(connection)
        except SmaltError:
            raise
        except OperationalError as exc:
            raise BackendError(
                f"The metadata database failed: {str(exc.orig or exc).splitlines()[0]}",
                hint=f"check that {self.display_url} is reachable and writable",
            ) from exc
        except SQLAlchemyError as exc:
            raise BackendError(f"The metadata database failed: {exc.__class__.__name__}: {exc}") from exc

    def release_connections(self) -> None:
        """Close the pooled connections (the store stays usable). Call it before ``os.fork()``: an
        SQLite connection, its locks and its WAL index must never cross into a child process."""
        self.engine.dispose()

    def close(self) -> None:
        self.engine.dispose()
