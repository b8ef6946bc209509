"""Content-addressed upload (the same bytes are stored once) and download of datastore paths."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from smalt.artifacts.filesystems import Location
from smalt.errors import BackendError, InvalidSpecError, NotFoundError, SpecProblem

_IGNORE_FILES = (".amlignore", ".gitignore")
_MARKER = ".smalt-complete"
_UPLOADED = re.compile(r"^(?P<prefix>LocalUpload)/(?P<digest>[0-9a-f]{32})/(?P<name>[^/]+)$")
_CHUNK = 1 << 20


def _ignored(folder: Path) -> object | None:
    """A pathspec of the folder's .amlignore (or else .gitignore), as Azure ML honours them."""
    for name in _IGNORE_FILES:
        path = folder / name
        if path.is_file():
            import pathspec

            return pathspec.GitIgnoreSpec.from_lines(path.read_text().splitlines())
    return None


def list_files(folder: Path) -> list[Path]:
    """The files of ``folder`` that an upload takes, sorted, honouring .amlignore/.gitignore."""
    spec = _ignored(folder)
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", "__pycache__"))
        for filename in filenames:
            path = Path(dirpath, filename)
            relative = path.relative_to(folder).as_posix()
            if spec is not None and spec.match_file(relative):  # type: ignore[attr-defined]
                continue
            files.append(path)
    return sorted(files)


def file_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def manifest(path: Path) -> dict[str, str]:
    """The sha256 of each file of a folder by its relative path (of a file: by its name)."""
    if path.is_file():
        return {path.name: file_digest(path)}
    return {file.relative_to(path).as_posix(): file_digest(file) for file in list_files(path)}


def path_digest(path: Path, files: dict[str, str] | None = None) -> str:
    """sha256 of a file's bytes, or of a folder's (relative path, file digest) listing; ``files``
    is its manifest when the caller has it already."""
    files = manifest(path) if files is None else files
    if path.is_file():
        return next(iter(files.values()))
    return _listing_digest(files)


def upload(local: Path, location: Location, prefix: str = "LocalUpload", files: dict[str, str] | None = None) -> str:
    """Upload a file or folder under ``<prefix>/<digest>/<name>``; returns that relative path.

    Content that is already there (a completion marker says so) is not uploaded again. The marker
    is written last, so an interrupted upload is redone rather than trusted.
    """
    if not local.exists():
        raise InvalidSpecError([SpecProblem(f"path '{local}' does not exist", "path")])
    if local.is_dir() and not list_files(local):
        raise InvalidSpecError([SpecProblem(f"folder '{local}' has no files to upload", "path")])

    def copy_local(target: Path) -> None:
        if local.is_file():
            shutil.copyfile(local, target)
            return
        for file in list_files(local):
            dest = target / file.relative_to(local)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, dest)

    return _stored_once(
        location, f"{prefix}/{path_digest(local, files)[:32]}", local.name, f"Upload of '{local}'",
        copy_local, lambda target: _upload_remote(local, location, target),
    )  # fmt: skip


def _stored_once(
    location: Location, folder: str, name: str, what: str,
    write_local: Callable[[Path], None], write_remote: Callable[[str], None],
) -> str:  # fmt: skip
    """Store ``name`` under the content-addressed ``folder`` (``LocalUpload/<digest>``) unless a
    completion marker says it is there; returns ``folder/name``. On a local disk the folder is
    built aside and renamed into place, so readers never see half of it; elsewhere the marker is
    written last, so an interrupted store is redone rather than trusted."""
    from fsspec.implementations.local import LocalFileSystem

    fs, base = location.fs, location.join(folder)
    try:
        if fs.exists(f"{base}/{_MARKER}"):
            return f"{folder}/{name}"
        if isinstance(fs, LocalFileSystem):
            _staged(Path(base), name, write_local)
        else:
            write_remote(f"{base}/{name}")
            fs.pipe_file(f"{base}/{_MARKER}", b"")
    except OSError as exc:
        raise BackendError(f"{what} to {location.root} failed: {exc}") from exc
    return f"{folder}/{name}"


def upload_of(relative: str) -> tuple[str, str] | None:
    """The digest and the name of a content-addressed upload's path (``LocalUpload/<digest>/<name>``)."""
    match = _UPLOADED.match(relative)
    return (match["digest"], match["name"]) if match is not None else None


def verify_upload(location: Location, relative: str, local: Path) -> None:
    """Check that ``local``, a copy of the content-addressed upload at ``relative``
    (``LocalUpload/<digest>/<name>``), still has that digest; anything else is left alone. A
    changed upload is removed, so that the next submission of the same code uploads it afresh,
    and refused: nothing runs code other than what was submitted."""
    match = _UPLOADED.match(relative)
    if match is None or path_digest(local)[:32] == match["digest"]:
        return
    with contextlib.suppress(OSError):
        location.fs.rm(location.join(f"{match['prefix']}/{match['digest']}"), recursive=True)
    raise BackendError(
        f"The stored code snapshot {relative} does not match its digest: it was changed after it was "
        "uploaded. It has been removed; submit the job again to upload the code afresh."
    )


def _staged(base: Path, name: str, fill: Callable[[Path], None]) -> None:
    """``fill`` the folder ``base/name`` aside, then rename ``base`` into place: readers never see half."""
    base.parent.mkdir(parents=True, exist_ok=True)
    staging = base.parent / f".tmp-{uuid.uuid4().hex}"
    try:
        staging.mkdir()
        fill(staging / name)
        (staging / _MARKER).write_text("")
        try:
            staging.rename(base)
        except OSError:
            if not (base / _MARKER).exists():  # somebody else's identical store won the race
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _moved(source: Path, target: Path) -> bool:
    """Rename ``source`` to ``target``; False where they are on different filesystems."""
    try:
        source.rename(target)
    except OSError:
        return False
    return True


def _upload_remote(local: Path, location: Location, target: str) -> None:
    if local.is_file():
        location.fs.put_file(str(local), target)
        return
    for file in list_files(local):
        location.fs.put_file(str(file), f"{target}/{file.relative_to(local).as_posix()}")


def download(location: Location, relative: str, destination: Path) -> Path:
    """Copy the file or folder at ``relative`` into ``destination/<its name>``; returns that path."""
    fs, source = location.fs, location.inside(relative)
    if not fs.exists(source):
        raise NotFoundError(f"Nothing is stored at '{relative}' in {location.root}.")
    from fsspec.implementations.local import LocalFileSystem

    name = source.rstrip("/").rsplit("/", 1)[-1]
    target = destination / name
    destination.mkdir(parents=True, exist_ok=True)
    try:
        if isinstance(fs, LocalFileSystem):  # a plain copy: fsspec's walk costs each step milliseconds
            if Path(source).is_dir():  # links are copied as links: a stored link never reads elsewhere
                shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
            else:
                shutil.copyfile(source, target)
        elif fs.isdir(source):
            fs.get(source.rstrip("/") + "/", str(target), recursive=True)
        else:
            fs.get_file(source, str(target))
    except OSError as exc:
        raise BackendError(f"Download of '{relative}' failed: {exc}") from exc
    return target


def promote(local: Path, location: Location, relative: str, *, consume: bool = False) -> None:
    """Publish a finished local folder at ``relative`` as a whole: readers see all of it or nothing.

    On a local filesystem the folder is copied aside and renamed into place (with ``consume``, a
    scratch folder its caller gives up, it is moved there when it can be, not copied); elsewhere it
    is uploaded and a completion marker is written last. An existing folder there is replaced.
    """
    from fsspec.implementations.local import LocalFileSystem

    target = location.join(relative).rstrip("/")
    drop_escaping_links(local)
    try:
        if isinstance(location.fs, LocalFileSystem):
            final = Path(target)
            final.parent.mkdir(parents=True, exist_ok=True)
            staging = final.parent / f".tmp-{uuid.uuid4().hex}"
            if not (consume and _moved(local, staging)):
                shutil.copytree(local, staging, symlinks=True)
            if final.exists():
                shutil.rmtree(final)
            staging.rename(final)
            return
        for file in sorted(p for p in local.rglob("*") if p.is_file() and not p.is_symlink()):
            location.fs.put_file(str(file), f"{target}/{file.relative_to(local).as_posix()}")
        location.fs.pipe_file(f"{target}/{_MARKER}", b"")
    except OSError as exc:
        raise BackendError(f"Publishing '{local}' to {target} failed: {exc}") from exc


def drop_escaping_links(folder: Path) -> None:
    """Remove every symbolic link in ``folder`` that is absolute or leads outside it, so that a
    published output never points elsewhere (``/etc/shadow``, ``/``)."""
    if not folder.is_dir():
        return
    root = folder.resolve()
    for here, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            path = Path(here, name)
            if not path.is_symlink():
                continue
            target = os.readlink(path)
            real = path.resolve()
            if os.path.isabs(target) or (real != root and root not in real.parents):
                path.unlink()


@dataclass(frozen=True)
class Entry:
    """One entry of a folder listing: a path relative to the listed folder's root."""

    path: str
    is_dir: bool
    size: int | None


def write_stream(location: Location, relative: str, chunks: Iterable[bytes]) -> int:
    """Store a file from chunks; readers never see a half-written file. Returns the size."""
    from fsspec.implementations.local import LocalFileSystem

    target = location.join(relative)
    size = 0
    try:
        if isinstance(location.fs, LocalFileSystem):
            final = Path(target)
            final.parent.mkdir(parents=True, exist_ok=True)
            staging = final.parent / f".tmp-{uuid.uuid4().hex}"
            try:
                with open(staging, "wb") as handle:
                    for chunk in chunks:
                        handle.write(chunk)
                        size += len(chunk)
                staging.replace(final)
            finally:
                staging.unlink(missing_ok=True)
            return size
        data = b"".join(chunks)
        location.fs.pipe_file(target, data)
        return len(data)
    except OSError as exc:
        raise BackendError(f"Writing '{relative}' to {location.root} failed: {exc}") from exc


def read_stream(location: Location, relative: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """The bytes of a stored file, in chunks. NotFoundError when there is no file there."""
    target = location.inside(relative)
    if not location.fs.isfile(target):
        raise NotFoundError(f"No artifact at '{relative}'.")

    def chunks() -> Iterator[bytes]:
        with location.fs.open(target, "rb") as handle:
            while block := handle.read(chunk_size):
                yield block

    return chunks()


def list_entries(location: Location, relative: str) -> list[Entry]:
    """The direct children of a stored folder (nothing when there is no folder), sorted by path."""
    base = location.inside(relative).rstrip("/")
    fs = location.fs
    if not fs.isdir(base):
        return []
    entries = []
    for info in fs.ls(base, detail=True):
        name = str(info["name"]).rstrip("/").rsplit("/", 1)[-1]
        if name.startswith(".tmp-") or name == _MARKER:
            continue
        child = f"{relative.strip('/')}/{name}".lstrip("/")
        is_dir = info.get("type") == "directory"
        entries.append(Entry(child, is_dir, None if is_dir else int(info.get("size") or 0)))
    return sorted(entries, key=lambda e: e.path)


# -- a pool of blobs by digest, and folders assembled from it ------------------------------------
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def is_digest(value: object) -> bool:
    """A sha256 digest as the pool names blobs: 64 lower-case hex digits."""
    return isinstance(value, str) and _DIGEST.match(value) is not None


#: A pooled blob's modification time. Uploads link to pooled blobs; a write through such a link
#: changes the shared file's time, and a blob whose time is not this one is no longer trusted.
_POOLED_NS = 0


def pool_missing(pool: Path, digests: Iterable[str]) -> list[str]:
    """The digests of ``digests`` the pool does not hold intact, in order, once each (a blob
    written to since it was pooled is dropped: it is sent again)."""
    seen: set[str] = set()
    missing = []
    base = str(pool)  # plain strings: pathlib costs more than the stat itself, on thousands of files
    for digest in digests:
        if digest in seen:
            continue
        seen.add(digest)
        blob = os.path.join(base, digest)
        try:
            changed = os.stat(blob).st_mtime_ns != _POOLED_NS
        except OSError:
            missing.append(digest)
            continue
        if changed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(blob)
            missing.append(digest)
    return missing


class PoolWriter:
    """One blob on its way into the pool under its sha256 ``digest``: written aside, refused (and
    nothing kept) if the bytes have another digest, renamed into place: never half a blob."""

    def __init__(self, pool: Path, digest: str) -> None:
        if not is_digest(digest):
            raise InvalidSpecError.one(f"{digest!r} is not a sha256 digest (64 lower-case hex digits)", "digest")
        pool.mkdir(parents=True, exist_ok=True)
        self._target = pool / digest
        self._digest = digest
        self._staging = pool / f".tmp-{uuid.uuid4().hex}"
        self._handle = self._staging.open("wb")
        self._hasher = hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        self._hasher.update(chunk)
        self._handle.write(chunk)

    def close(self) -> None:
        """Keep the blob if its bytes have its digest; raises (keeping nothing) if not."""
        try:
            self._handle.close()
            if self._hasher.hexdigest() != self._digest:
                raise InvalidSpecError.one(
                    f"the bytes sent have digest {self._hasher.hexdigest()}, not {self._digest}", "digest"
                )
            os.utime(self._staging, ns=(_POOLED_NS, _POOLED_NS))
            self._staging.rename(self._target)
        finally:
            self._staging.unlink(missing_ok=True)

    def discard(self) -> None:
        self._handle.close()
        self._staging.unlink(missing_ok=True)


def assemble(pool: Path, files: dict[str, str], name: str, location: Location, *, single: bool) -> str:
    """Put the file (``single``) or folder ``name`` whose files are ``files`` (relative path ->
    digest, each in ``pool``) where ``upload`` would have put it, ``LocalUpload/<digest>/<name>``,
    and return that path: the same content uploaded either way is stored once. On a local disk
    the files are hard links to the pool's, so an unchanged file costs no copy."""
    missing = pool_missing(pool, files.values())
    if missing:
        raise InvalidSpecError.one(f"{len(missing)} file(s) were not sent first, e.g. {missing[0]}", "files")
    digest = next(iter(files.values())) if single else _listing_digest(files)

    def put_remote(target: str) -> None:
        for path, blob in files.items():
            location.fs.put_file(str(pool / blob), target if single else f"{target}/{path}")

    return _stored_once(
        location, f"LocalUpload/{digest[:32]}", name, f"Storing the upload '{name}'",
        lambda target: _link_from_pool(pool, files, target, single=single), put_remote,
    )  # fmt: skip


def _listing_digest(files: dict[str, str]) -> str:
    # path_digest's rule for a folder, from a manifest alone.
    listing = hashlib.sha256()
    for relative, digest in sorted(files.items(), key=lambda item: item[0].split("/")):
        listing.update(f"{relative}\0{digest}\n".encode())
    return listing.hexdigest()


def _link_from_pool(pool: Path, files: dict[str, str], top: Path, *, single: bool) -> None:
    # Plain strings: pathlib costs more than the links themselves, on thousands of files.
    made: set[str] = set()
    source = str(pool)
    for path, blob in files.items():
        target = str(top) if single else os.path.join(top, path)
        parent = os.path.dirname(target)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        try:
            os.link(os.path.join(source, blob), target)
        except OSError:  # another filesystem, or links not allowed: a copy
            shutil.copyfile(os.path.join(source, blob), target)
