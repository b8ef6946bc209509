"""The workspaces one place holds: ``smalt server``'s, or the named ones of this user
(``~/.smalt/<name>``), listed, created, shown and deleted by name.

A holder has a home folder (each workspace a folder ``<home>/<name>`` with its ``workspace.json``)
and may hold one more workspace anywhere (the folder a server was started on). Workspaces are
opened on first use and kept open. Deleting one moves its folder to ``<home>/.deleted/`` (Azure ML
soft-deletes too): nothing is lost to a wrong name, and a person removes the folder for good.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from smalt.entities import Workspace
from smalt.entities.workspace import WORKSPACE_NAME
from smalt.errors import AlreadyExistsError, ConfigurationError, InvalidSpecError, InvalidStateError, NotFoundError
from smalt.services.workspace import CONFIG_FILE, DATABASE_ENV, WorkspaceContext, open_workspace, served_blobstore
from smalt.store import schema_url

DELETED = ".deleted"


class WorkspaceService:
    """The workspaces under ``home`` (and ``primary``, wherever it is), by name."""

    def __init__(self, home: Path | None, primary: WorkspaceContext | None = None) -> None:
        self.home = home
        self.primary = primary
        self._opened: dict[str, WorkspaceContext] = {primary.name: primary} if primary is not None else {}
        self._lock = threading.Lock()
        #: Called with each workspace this holder opens (a server warms its fork server for it).
        self.on_open: list[Callable[[WorkspaceContext], None]] = []

    def get(self, name: str) -> Workspace:
        return self.open(name).describe()

    def open(self, name: str) -> WorkspaceContext:
        """The workspace named ``name``, opened."""
        with self._lock:
            found = self._opened.get(name)
            if found is not None:
                return found
            folder = self._folder(name)
            if folder is None or not (folder / CONFIG_FILE).is_file():
                raise NotFoundError(f"Workspace '{name}' not found.", hint="smalt workspace list")
            context = open_workspace(folder, create=False)
            self._opened[name] = context
        for hook in self.on_open:
            hook(context)
        return context

    def list(self) -> list[Workspace]:
        """Every workspace held, by name; the primary first (a client naming none gets it)."""
        names = set(self._opened)
        if self.home is not None and self.home.is_dir():
            names |= {f.name for f in self.home.iterdir()
                      if (f / CONFIG_FILE).is_file() and WORKSPACE_NAME.match(f.name)}  # fmt: skip
        found = []
        primary = self.primary.name if self.primary is not None else None
        for name in sorted(names, key=lambda n: (n != primary, n)):
            try:
                found.append(self.open(name).describe())
            except (NotFoundError, ConfigurationError):
                continue  # deleted meanwhile, or a folder that is not a workspace after all
        return found

    def create(self, name: str) -> Workspace:
        """A new workspace ``<home>/<name>``."""
        if not WORKSPACE_NAME.match(name):
            raise InvalidSpecError.one(
                f"workspace name {name!r} must be 3 to 33 letters, digits, '-' or '_', starting with a letter or digit",
                "name",
            )  # fmt: skip
        if self.home is None:
            raise InvalidStateError(
                "This server holds one workspace, the folder it was started on; it cannot create others.",
                hint="start it with `smalt server --home <folder>` to hold many",
            )
        with self._lock:
            folder = self.home / name
            if name in self._opened or (folder / CONFIG_FILE).exists():
                raise AlreadyExistsError(f"Workspace '{name}' already exists.", hint="smalt workspace show")
            database_url, blobstore_url = self._stores(name, folder)
            context = open_workspace(folder, create=True, name=name, database_url=database_url,
                                     blobstore_url=blobstore_url)  # fmt: skip
            self._opened[name] = context
        for hook in self.on_open:
            hook(context)
        return context.describe()

    def _stores(self, name: str, folder: Path) -> tuple[str, str]:
        """Where a workspace made here keeps its metadata and its blobs (docs/decisions.md): in a
        schema of its own (``smalt_<name>``) of the server's PostgreSQL database, else SQLite in its
        folder; under ``<name>/`` of the server's blob store, else in its folder. A first workspace
        that has the blob store's root for its own (one made before this rule) would hold the
        others' blobs inside its own, so then they stay in their folders."""
        base = os.environ.get(DATABASE_ENV) or (self.primary.database_url if self.primary is not None else "")
        on_postgresql = base.startswith("postgresql")
        database = schema_url(base, f"smalt_{name}") if on_postgresql else f"sqlite:///{folder / 'metadata.db'}"
        blobs = served_blobstore(name)
        first = (self.primary.blobstore_url or "").rstrip("/") if self.primary is not None else ""
        inside_first = bool(blobs and first and blobs.startswith(first + "/"))
        return database, blobs if blobs and not inside_first else ""

    def delete(self, name: str) -> None:
        """Set the workspace aside (``<home>/.deleted/<name>-<time>``); never the primary one."""
        context = self.open(name)
        if self.primary is not None and context is self.primary:
            raise InvalidStateError(f"Workspace '{name}' is the one this server was started on; it is not deleted.")
        assert self.home is not None  # only the primary can live outside home
        with self._lock:
            self._opened.pop(name, None)
            context.close()
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            (self.home / DELETED).mkdir(exist_ok=True)
            context.path.rename(self.home / DELETED / f"{name}-{stamp}")

    def sync_keys(self, name: str) -> dict[str, int]:
        """Rotate the key of workspace ``name`` (services/keys.py)."""
        from smalt.services.keys import rotate

        return rotate(self.open(name))

    def close(self) -> None:
        with self._lock:
            for context in self._opened.values():
                if context is not self.primary:
                    context.close()
            self._opened = {self.primary.name: self.primary} if self.primary is not None else {}

    def _folder(self, name: str) -> Path | None:
        if self.home is None or not WORKSPACE_NAME.match(name):
            return None
        return self.home / name
