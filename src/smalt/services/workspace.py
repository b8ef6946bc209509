"""Finding, creating and opening a workspace.

A workspace is, in order: the path given (``--workspace`` / ``MLClient(workspace=...)``),
``SMALT_WORKSPACE``, the nearest ``.smalt/`` folder above the current directory, else
``~/.smalt/default``. It is created on first use. ``SMALT_DATABASE_URL`` puts its metadata in
PostgreSQL; ``SMALT_BLOBSTORE_URL`` puts ``workspaceblobstore`` at any fsspec URL.
"""

from __future__ import annotations

import getpass
import json
import os
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from smalt.entities import Datastore, Workspace
from smalt.entities.workspace import WORKSPACE_ENV
from smalt.errors import ConfigurationError
from smalt.store import MetadataStore, SecretBox, SqlMetadataStore
from smalt.store.publish import publish_file

#: Who calls, for the request under way: ``smalt server`` sets it to the principal it authenticated
#: (or, with authentication off, to what the client says); None means this process's own user.
caller: ContextVar[str | None] = ContextVar("smalt_caller", default=None)
#: The run a request may write to, with the runs nested under it: a job's own token is scoped to its
#: run (server/access.py sets it; services/tracking.py checks it). None: any run.
run_scope: ContextVar[str | None] = ContextVar("smalt_run_scope", default=None)
#: The request under way, for the audit log: its id and the client's address (None: this process).
origin: ContextVar[tuple[str, str] | None] = ContextVar("smalt_origin", default=None)

DATABASE_ENV = "SMALT_DATABASE_URL"
BLOBSTORE_ENV = "SMALT_BLOBSTORE_URL"
CONFIG_FILE = "workspace.json"
DEFAULT_DATASTORE = "workspaceblobstore"


def _workspaces_home() -> Path:
    return Path.home() / ".smalt"


def resolve_path(explicit: str | os.PathLike[str] | None = None, *, cwd: Path | None = None) -> Path:
    """Which workspace folder a command means (see the module docstring for the order)."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get(WORKSPACE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    home = _workspaces_home()
    start = (cwd or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        candidate = folder / ".smalt"
        # ~/.smalt holds the named workspaces (default, ...); it is not a workspace itself.
        if candidate.is_dir() and candidate != home:
            return candidate
    return home / "default"


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


@dataclass
class WorkspaceContext:
    """An open workspace: its folder, settings, metadata store and secret box."""

    path: Path
    name: str
    id: str
    created_at: datetime
    database_url: str
    blobstore_url: str | None
    store: MetadataStore
    #: The user of this process: who acts when no caller is named (``caller``).
    owner: str = field(default_factory=current_user)

    @property
    def user(self) -> str:
        """Who is acting, as the services record it (``created_by``): the caller of the request
        under way, or this process's user."""
        return caller.get() or self.owner

    @cached_property
    def secrets(self) -> SecretBox:
        """The workspace's secret box, opened (and its key made) the first time secrets are needed."""
        return SecretBox.for_workspace(self.path)

    def describe(self) -> Workspace:
        return Workspace(
            name=self.name, path=str(self.path), id=self.id, database=self.store.display_url,
            blobstore=self.blobstore_url or str(self.path / "blobs"), created_at=self.created_at,
        )  # fmt: skip

    def default_datastore(self) -> Datastore:
        if self.blobstore_url:
            return Datastore(
                name=DEFAULT_DATASTORE,
                type="local",
                url=self.blobstore_url,
                is_default=True,
                description="The workspace's default datastore.",
            )
        return Datastore(
            name=DEFAULT_DATASTORE,
            type="local",
            path=str(self.path / "blobs"),
            is_default=True,
            description="The workspace's default datastore.",
        )

    def close(self) -> None:
        self.store.close()


def _read_config(path: Path) -> dict[str, Any]:
    file = path / CONFIG_FILE
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{file} is not valid JSON (line {exc.lineno}): {exc.msg}.",
            hint="fix the file, or move the folder aside to start a new workspace",
        ) from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"{file} must hold a JSON object.")
    return data


def default_name(path: Path) -> str:
    """The name of a workspace made at ``path`` without one: its folder's (a project's ``.smalt``: the project's)."""
    return path.parent.name if path.name == ".smalt" else path.name


def served_blobstore(name: str) -> str | None:
    """Where a workspace a server makes keeps its blobs: under ``<name>/`` of the server's blob
    store (``SMALT_BLOBSTORE_URL``); None without one."""
    root = os.environ.get(BLOBSTORE_ENV, "").rstrip("/")
    return f"{root}/{name}" if root else None


def _write_config(path: Path, name: str | None, database_url: str | None, blobstore_url: str | None) -> None:
    config = {
        "name": name or default_name(path),
        "id": uuid.uuid4().hex,
        "created_at": datetime.now(UTC).isoformat(),
    }
    # Recorded, so that every process opening it later (a job's, a server's) uses the same ones.
    stores = {"database_url": database_url, "blobstore_url": blobstore_url}
    config.update({k: v for k, v in stores.items() if v is not None})
    try:
        path.mkdir(parents=True, exist_ok=True)
        publish_file(path / CONFIG_FILE, json.dumps(config, indent=2).encode(), mode=0o644)
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot create the workspace at {path}: {exc.strerror}.",
            hint=f"choose a writable folder with --workspace or {WORKSPACE_ENV}",
        ) from exc


def open_workspace(path: Path, *, create: bool = True, name: str | None = None,
                   database_url: str | None = None, blobstore_url: str | None = None) -> WorkspaceContext:  # fmt: skip
    """Open the workspace at ``path``, creating it (folder, database, default datastore) if needed.
    A new workspace keeps its metadata in ``database_url`` (else ``SMALT_DATABASE_URL``, else SQLite
    in its folder) and its default datastore at ``blobstore_url`` (else ``SMALT_BLOBSTORE_URL``,
    else its folder), and records both: later openings use what it recorded."""
    if not (path / CONFIG_FILE).exists():
        if not create:
            raise ConfigurationError(f"There is no workspace at {path}.", hint="smalt workspace create")
        _write_config(path, name, database_url or os.environ.get(DATABASE_ENV),
                      blobstore_url if blobstore_url is not None else os.environ.get(BLOBSTORE_ENV))  # fmt: skip
    opened.add(path)
    config = _read_config(path)
    database_url, blobstore_url = _stores(path, config)
    store = SqlMetadataStore(database_url)
    try:
        context = WorkspaceContext(
            path=path, name=str(config.get("name", path.name)), id=str(config.get("id", "")),
            created_at=datetime.fromisoformat(config["created_at"]) if "created_at" in config
            else datetime.now(UTC),
            database_url=database_url, blobstore_url=blobstore_url, store=store,
        )  # fmt: skip
        _ensure_default_datastore(context)
    except BaseException:
        store.close()
        raise
    return context


def _stores(path: Path, config: dict[str, Any]) -> tuple[str, str | None]:
    """The database URL and blob store URL of the workspace at ``path``: as it recorded them, else
    as this process's environment says."""
    recorded = {k: config[k] for k in ("database_url", "blobstore_url") if k in config}  # "" records "none"
    database_url = recorded.get("database_url", os.environ.get(DATABASE_ENV)) or f"sqlite:///{path / 'metadata.db'}"
    return database_url, recorded.get("blobstore_url", os.environ.get(BLOBSTORE_ENV)) or None


#: Workspaces a fork server opened and warmed (execution/detached.py); its children reuse them.
_kept: dict[Path, WorkspaceContext] = {}
#: Every workspace folder this process opened (the CLI's agent warms them for the next commands).
opened: set[Path] = set()


def kept(path: Path) -> WorkspaceContext | None:
    """The workspace at ``path`` as kept open before this process was forked, if it is still the
    workspace there (not one deleted and made again at the same path since)."""
    context = _kept.get(path)
    if context is None:
        return None
    try:
        config = _read_config(path)
        same = config.get("id") == context.id and _stores(path, config) == (context.database_url, context.blobstore_url)
    except (OSError, ConfigurationError):
        same = False
    if not same:
        _kept.pop(path, None)
        return None
    return context


def forget(path: Path) -> None:
    """Stop keeping the workspace at ``path`` open (its engine closed)."""
    context = _kept.pop(path, None)
    if context is not None:
        context.close()


def keep_open(context: WorkspaceContext) -> None:
    """Keep ``context`` for the processes this one forks (``open_kept``): they skip opening it,
    and find its engine's statement cache already filled. Its connections are closed now, since
    none may cross into a child (the context stays usable: it reconnects when next used). Call it
    just before each fork."""
    context.store.release_connections()
    _kept[context.path] = context


def open_kept(path: Path) -> WorkspaceContext:
    """The workspace at ``path`` as kept open before this process was forked, else opened now. It
    stays kept: what this process forks in turn (a pipeline's driver, its steps) starts warm too."""
    found = kept(path)
    return found if found is not None else open_workspace(path, create=False)


def _ensure_default_datastore(context: WorkspaceContext) -> None:
    with context.store.transaction() as tx:
        if tx.datastores.get(DEFAULT_DATASTORE) is not None:
            return
    default = context.default_datastore()
    if default.path:
        Path(default.path).mkdir(parents=True, exist_ok=True)
    with context.store.transaction(write=True) as tx:
        if tx.datastores.get(DEFAULT_DATASTORE) is None:
            tx.datastores.upsert(DEFAULT_DATASTORE, default.type, default.to_dict(), context.user, is_default=True)
