"""Local files over HTTP: a client sends the files a server lacks, by digest, then names the file
or folder they make; the server assembles it where a local upload would have put it
(``LocalUpload/<digest>/<name>`` in ``workspaceblobstore``) and answers its datastore URI.

Files are pooled by sha256 in the workspace (``uploads/pool``): a folder sent again with one file
changed sends that file only, and on a local disk the assembled folder links to the pool.
Everything a client sends is checked here: digests are digests, names are one path segment,
relative paths stay inside the folder they name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from smalt.artifacts.content import PoolWriter, assemble, is_digest, pool_missing, upload_of
from smalt.errors import InvalidSpecError, NotFoundError
from smalt.services.datastores import DatastoreService
from smalt.services.workspace import DEFAULT_DATASTORE, WorkspaceContext
from smalt.specs.references import confined_path, parse_datastore_uri
from smalt.store.publish import publish_file

#: The most files one upload may name, and the largest file a client may send.
MAX_FILES = 100_000
MAX_FILE_BYTES = 16 << 30


class UploadService:
    """The pool of a workspace's uploaded files, and the uploads assembled from it."""

    def __init__(self, workspace: WorkspaceContext) -> None:
        self._ws = workspace
        self._pool = workspace.path / "uploads" / "pool"
        self._listings = workspace.path / "uploads" / "listings"

    def missing(self, digests: list[str]) -> list[str]:
        """Which of ``digests`` the server lacks: the client sends those, and only those."""
        _check_digests(digests)
        return pool_missing(self._pool, digests)

    def writer(self, digest: str) -> PoolWriter:
        """Where one file's bytes go; ``close()`` keeps them only if they have ``digest``."""
        return PoolWriter(self._pool, digest)

    def commit(self, name: str, files: dict[str, str], *, single: bool, datastore: str | None = None) -> str:
        """The datastore URI of the file (``single``) or folder ``name`` made of ``files``
        (relative path -> digest), each sent before, put in ``datastore`` (the default unless
        named). A folder's files and digests are kept beside it (``files_of``)."""
        if not name or "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
            raise InvalidSpecError.one(f"{name!r} is not a file or folder name", "name")
        if not files or len(files) > MAX_FILES:
            raise InvalidSpecError.one(f"an upload names 1 to {MAX_FILES} files, not {len(files)}", "files")
        if single and list(files) != [name]:
            raise InvalidSpecError.one("a single file is named by its own name", "files")
        _check_digests(files.values())
        clean = {confined_path(path, field="files"): digest for path, digest in files.items()}
        if len(clean) != len(files) or any(not path for path in clean):
            raise InvalidSpecError.one("the relative paths of an upload are distinct and name files", "files")
        store = datastore or DEFAULT_DATASTORE
        try:
            location = DatastoreService(self._ws).location(store)
        except NotFoundError as exc:
            exc.field = exc.field or "datastore"
            raise
        relative = assemble(self._pool, clean, name, location, single=single)
        if not single:
            self._listings.mkdir(parents=True, exist_ok=True)
            listing = {"name": name, "files": clean}
            publish_file(self._listings / f"{relative.split('/')[1]}.json", json.dumps(listing).encode())
        return f"azureml://datastores/{store}/paths/{relative}"

    def files_of(self, uri: str) -> dict[str, str] | None:
        """Each file of a folder uploaded over HTTP (``uri``, as ``commit`` answered it) with its
        sha256, as a local upload would have hashed it; None for any other URI."""
        parsed = parse_datastore_uri(uri)
        upload = upload_of(parsed.path) if parsed is not None else None
        if upload is None:
            return None
        digest, name = upload
        try:
            listing = json.loads((self._listings / f"{digest}.json").read_text())
        except (OSError, ValueError):
            return None
        return dict(listing["files"]) if listing.get("name") == name else None


def _check_digests(digests: Iterable[str]) -> None:
    for digest in digests:
        if not is_digest(digest):
            raise InvalidSpecError.one(f"{digest!r} is not a sha256 digest (64 lower-case hex digits)", "digests")
