"""Datastores: definitions with credentials encrypted at rest, and the bytes behind them."""

from __future__ import annotations

import difflib
from pathlib import Path

from smalt.artifacts import Location, download, open_location, promote, upload, verify_upload
from smalt.entities import Datastore
from smalt.entities.datastore import shown_datastore
from smalt.errors import InvalidStateError, NotFoundError
from smalt.services.provenance import creation_context
from smalt.services.workspace import DEFAULT_DATASTORE, WorkspaceContext
from smalt.specs import DatastoreUri, parse_datastore_uri, prepare
from smalt.store import NamedRecord

#: The default datastore's filesystem, by workspace id. It cannot be replaced, so a process that opened
#: it hands it on to the processes it forks: a pipeline driver's spare child, a step's supervisor.
_DEFAULTS: dict[str, Location] = {}


class DatastoreService:
    """Create, read, list and delete datastores; open their bytes."""

    def __init__(self, workspace: WorkspaceContext, *, remember: bool = False) -> None:
        """``remember``: open each datastore's location once, for this service's lifetime. A job's
        supervisor does: it reads and writes the datastores it started with, four to six times a
        job, and each lookup in a freshly forked process costs a transaction (about 1 ms)."""
        self._ws = workspace
        self._remembered: dict[str, Location] | None = {} if remember else None

    def _entity(self, record: NamedRecord) -> Datastore:
        return _stored(record).model_copy(update={
            "is_default": record.is_default,
            "creation_context": creation_context(record),
        })  # fmt: skip

    def create_or_update(self, datastore: Datastore) -> Datastore:
        """Create or replace a datastore. Its secrets are sealed; what comes back has none."""
        if datastore.name == DEFAULT_DATASTORE:
            raise InvalidStateError(
                f"'{DEFAULT_DATASTORE}' is the workspace's own datastore and cannot be replaced.",
                hint="create a datastore with another name",
            )
        datastore = prepare(datastore) if datastore.type == "local" and datastore.path else datastore
        creds = datastore.credentials
        sealed = self._ws.secrets.seal(creds.secrets()) if creds and creds.secrets() else None
        public = datastore.model_copy(
            update={
                "credentials": creds.without_secrets() if creds else None,
                "creation_context": None,
                "is_default": False,
            }
        )
        if public.type == "local" and public.path:
            Path(public.path).mkdir(parents=True, exist_ok=True)
        with self._ws.store.transaction(write=True) as tx:
            record, _ = tx.datastores.upsert(public.name, public.type, public.to_dict(), self._ws.user, secrets=sealed)
        return self._entity(record)

    def get(self, name: str) -> Datastore:
        with self._ws.store.transaction() as tx:
            record = tx.datastores.get(name)
            if record is None:
                names = [r.name for r in tx.datastores.list()]
        if record is None:
            raise _not_found(name, names)
        return self._entity(record)

    def list(self) -> list[Datastore]:
        with self._ws.store.transaction() as tx:
            return [self._entity(r) for r in tx.datastores.list()]

    def delete(self, name: str) -> None:
        if name == DEFAULT_DATASTORE:
            raise InvalidStateError(f"'{DEFAULT_DATASTORE}' cannot be deleted; every workspace has it.")
        with self._ws.store.transaction(write=True) as tx:
            if not tx.datastores.delete(name):
                names = [r.name for r in tx.datastores.list()]
                raise _not_found(name, names)

    def location(self, name: str) -> Location:
        """The filesystem behind a datastore, opened with its decrypted credentials."""
        if self._remembered is not None and name in self._remembered:
            return self._remembered[name]
        if name == DEFAULT_DATASTORE and self._ws.id in _DEFAULTS:
            return _DEFAULTS[self._ws.id]
        with self._ws.store.transaction() as tx:
            record = tx.datastores.get(name)
            names = [] if record is not None else [r.name for r in tx.datastores.list()]
        if record is None:
            raise _not_found(name, names)
        secrets = self._ws.secrets.open(record.secrets) if record.secrets else {}
        location = open_location(_stored(record), secrets)
        if self._remembered is not None:
            self._remembered[name] = location
        if name == DEFAULT_DATASTORE and self._ws.id:
            _DEFAULTS[self._ws.id] = location
        return location

    def upload(
        self, local: Path, datastore: str = DEFAULT_DATASTORE, files: dict[str, str] | None = None
    ) -> DatastoreUri:
        """Upload content-addressed; the same bytes are stored once. ``files``: the manifest of
        ``local`` (artifacts.content.manifest), when the caller has it already."""
        relative = upload(local, self.location(datastore), files=files)
        return DatastoreUri(datastore, relative)

    def promote(self, local: Path, uri: str, *, consume: bool = False) -> None:
        """Publish a finished folder at a datastore URI, all at once (``consume``: ``local`` is
        scratch, moved rather than copied where it can be)."""
        parsed = _require_uri(uri)
        promote(local, self.location(parsed.datastore), parsed.path, consume=consume)

    def exists(self, uri: str) -> bool:
        parsed = _require_uri(uri)
        location = self.location(parsed.datastore)
        return bool(location.fs.exists(location.join(parsed.path)))

    def read_bytes(self, uri: str) -> bytes:
        """The bytes of the file an ``azureml://datastores/<ds>/paths/<p>`` URI names."""
        parsed = _require_uri(uri)
        location = self.location(parsed.datastore)
        target = location.inside(parsed.path)
        if not location.fs.isfile(target):
            raise NotFoundError(f"No file at {uri}.", hint=f"smalt datastore show --name {parsed.datastore}")
        data = location.fs.cat_file(target)
        assert isinstance(data, bytes)
        return data

    def download(self, uri: str, destination: Path, *, verify: bool = False) -> Path:
        """Copy what ``uri`` names into ``destination``. ``verify``: it is a content-addressed
        upload (a code snapshot) whose copy must still have its digest (raises otherwise)."""
        parsed = _require_uri(uri)
        location = self.location(parsed.datastore)
        copied = download(location, parsed.path, destination)
        if verify:
            verify_upload(location, parsed.path, copied)
        return copied


def _stored(record: NamedRecord) -> Datastore:
    """A datastore as stored: its credentials hold no secrets, so they are not re-checked."""
    return shown_datastore(record.spec)


def _require_uri(uri: str) -> DatastoreUri:
    parsed = parse_datastore_uri(uri)
    if parsed is None:
        raise NotFoundError(
            f"{uri!r} is not a datastore URI.", hint="write azureml://datastores/<datastore>/paths/<path>"
        )
    return parsed


def _not_found(name: str, names: list[str]) -> NotFoundError:
    close = difflib.get_close_matches(name, names, n=1)
    meant = f" Did you mean '{close[0]}'?" if close else ""
    return NotFoundError(
        f"Datastore '{name}' not found.{meant} Datastores: {', '.join(names) or 'none'}.",
        hint="smalt datastore list",
    )
