"""Local files over HTTP: a client sends the files a server lacks, by digest, then names the file
or folder they make; the server assembles it where a local upload would have put it
(``LocalUpload/<digest>/<name>`` in ``workspaceblobstore``) and answers its datastore URI.

Files are pooled by sha256 in the workspace (``uploads/pool``): a folder sent again with one file
changed sends that file only, and on a local disk the assembled folder links to the pool.
Everything a client sends is checked here: digests are digests, names are one path segment,
relative paths stay inside the folder they name.
"""

from __future__ import annotations

from collections.abc import Iterable

from smalt.artifacts.content import PoolWriter, assemble, is_digest, pool_missing
from smalt.errors import InvalidSpecError
from smalt.services.datastores import DatastoreService
from smalt.services.workspace import DEFAULT_DATASTORE, WorkspaceContext
from smalt.specs.references import confined_path

#: The most files one upload may name, and the largest file a client may send.
MAX_FILES = 100_000
MAX_FILE_BYTES = 16 << 30


class UploadService:
    """The pool of a workspace's uploaded files, and the uploads assembled from it."""

    def __init__(self, workspace: WorkspaceContext) -> None:
        self._ws = workspace
        self._pool = workspace.path / "uploads" / "pool"

    def missing(self, digests: list[str]) -> list[str]:
        """Which of ``digests`` the server lacks: the client sends those, and only those."""
        _check_digests(digests)
        return pool_missing(self._pool, digests)

    def writer(self, digest: str) -> PoolWriter:
        """Where one file's bytes go; ``close()`` keeps them only if they have ``digest``."""
        return PoolWriter(self._pool, digest)

    def commit(self, name: str, files: dict[str, str], *, single: bool) -> str:
        """The datastore URI of the file (``single``) or folder ``name`` made of ``files``
        (relative path -> digest), each sent before."""
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
        location = DatastoreService(self._ws).location(DEFAULT_DATASTORE)
        relative = assemble(self._pool, clean, name, location, single=single)
        return f"azureml://datastores/{DEFAULT_DATASTORE}/paths/{relative}"


def _check_digests(digests: Iterable[str]) -> None:
    for digest in digests:
        if not is_digest(digest):
            raise InvalidSpecError.one(f"{digest!r} is not a sha256 digest (64 lower-case hex digits)", "digests")
