"""What a job submission carries to a server: its YAML file and every local file it names.

A server never reads a path its client names: the client packs the job file with the code
folders, data files, conda files and component files it refers to (and theirs) into one tar
archive, with the folder they share as its root. The server unpacks it into a scratch folder and
reads the spec confined to it (``smalt.specs.references.confined_to``).

Finding the files reads the YAML, not the entities: any local path under a key that names files
in Azure ML's schemas is taken, and a component, environment or model file is followed into. Taking a file the spec
does not need costs bytes, never correctness; missing one makes the server say which path is not
there. Folders are packed as an upload takes them: ``.amlignore`` (or else ``.gitignore``) is
honoured and ``.git`` and ``__pycache__`` are left out. Standard library and ruamel.yaml only
(and ruamel only for a file not read before): ``smalt job create`` against a server imports this
and nothing heavier.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

#: Keys whose values are local paths in Azure ML's job, component and environment schemas.
_PATH_KEYS = frozenset({"code", "path", "conda_file", "component", "additional_includes", "environment", "model"})
#: Keys that may name another YAML file whose own paths travel too (``environment: file:./env.yml``).
_SPEC_KEYS = frozenset({"component", "environment", "model"})
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_IGNORE_FILES = (".amlignore", ".gitignore")
_MENTIONS_PATHS = re.compile(rb"(?<![\w-])(?:%s)[\"']?\s*:" % b"|".join(k.encode() for k in sorted(_PATH_KEYS)))


def _local(value: str) -> bool:
    # specs.references.is_local_path's rule, restated: importing smalt.specs loads the entities.
    if value.startswith("file:"):
        return True
    return not (_SCHEME.match(value) or value.startswith(("azureml:", "${{", "runs:/", "models:/")))


def _read(file: Path) -> Any:
    try:
        text = file.read_bytes()
    except OSError:
        return None
    if not _MENTIONS_PATHS.search(text):
        return None  # a file with no path key names no file: no need to pay for a YAML parser
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="safe").load(text)
    except (YAMLError, OSError, RecursionError, ValueError):
        return None  # the server reads it again and reports the problem with its line


def _strings(node: Any) -> Iterator[tuple[str, str]]:
    """(key, value) for each string under a path key, anywhere in ``node``."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key in _PATH_KEYS and isinstance(value, str):
                    yield key, value
                elif key in _PATH_KEYS and isinstance(value, list):
                    yield from ((key, v) for v in value if isinstance(v, str))
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def _is_spec(key: str, path: Path) -> bool:
    return key in _SPEC_KEYS and path.suffix in (".yml", ".yaml") and path.is_file()


def _scan(file: Path) -> tuple[dict[str, list[int]], list[tuple[str, str]]]:
    """The YAML files read (``file`` and the component files it names, with their stamps) and
    every local path they name, with its key."""
    read: dict[str, list[int]] = {}
    named: list[tuple[str, str]] = []
    pending = [file.resolve()]
    while pending:
        current = pending.pop()
        if str(current) in read:
            continue
        read[str(current)] = _stamp(current)
        for key, value in _strings(_read(current)):
            if not _local(value):
                continue
            path = Path(value.removeprefix("file://").removeprefix("file:")).expanduser()
            path = (path if path.is_absolute() else current.parent / path).resolve()
            named.append((key, str(path)))
            if _is_spec(key, path):
                pending.append(path)
    return read, named


def _stamp(path: Path) -> list[int]:
    try:
        info = path.stat()
    except OSError:
        return [0, -1]
    return [info.st_mtime_ns, info.st_size]


def _cache_file() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "smalt" / "submissions.json"


def referenced(file: Path) -> set[Path]:
    """``file`` and every existing local file or folder it names, followed through component files.

    What a file names is kept (``~/.cache/smalt/submissions.json``) by the stamps (modification
    time, size) of the YAML files read: resubmitting an unchanged job, the everyday loop, costs
    no YAML parser (about 40 ms of imports and parsing for a pipeline)."""
    key = str(file.resolve())
    cache_file = _cache_file()
    try:
        cache = json.loads(cache_file.read_text())
        entry = cache[key]
        read, named = entry["read"], [tuple(pair) for pair in entry["named"]]
        fresh = all(_stamp(Path(p)) == stamp for p, stamp in read.items())
        # A component file that appeared since is one more file to read.
        fresh = fresh and not any(p not in read and _is_spec(k, Path(p)) for k, p in named)
    except (OSError, ValueError, KeyError, TypeError):
        cache, fresh = {}, False
    if not fresh:
        read, named = _scan(file)
        cache = {k: v for k, v in list(cache.items())[-63:] if k != key} if isinstance(cache, dict) else {}
        cache[key] = {"read": read, "named": named}
        _write(cache_file, json.dumps(cache).encode())
    found = {Path(p) for p in read}
    found.update(Path(p) for k, p in named if p not in read and Path(p).exists())
    return found


def _write(path: Path, data: bytes) -> None:
    """Replace ``path`` whole (a cache: a failure to write costs only the next parse)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.{os.getpid()}")
        staging.write_bytes(data)
        staging.replace(path)
    except OSError:
        pass


def _folder_files(folder: Path) -> Iterator[Path]:
    spec = None
    for name in _IGNORE_FILES:
        ignore = folder / name
        if ignore.is_file():
            import pathspec

            spec = pathspec.GitIgnoreSpec.from_lines(ignore.read_text().splitlines())
            break
    for here, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in (".git", "__pycache__"))
        for name in sorted(files):
            path = Path(here) / name
            if spec is None or not spec.match_file(path.relative_to(folder).as_posix()):
                yield path


def pack(file: Path) -> tuple[IO[bytes], str, str]:
    """The tar archive of ``file`` and what it names (rewound; in memory while small, on disk past
    8 MiB), the job file's path inside it, and the archive's root on this machine (absolute paths
    in the spec are read against it)."""
    paths = referenced(file)
    root = Path(os.path.commonpath([str(p if p.is_dir() else p.parent) for p in paths]))
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 - the caller closes it
    with tarfile.open(fileobj=spool, mode="w") as archive:
        added: set[Path] = set()
        for path in sorted(paths):
            if path.is_dir() and path != root:
                archive.add(path, arcname=path.relative_to(root).as_posix(), recursive=False)
            for member in _folder_files(path) if path.is_dir() else [path]:
                if member not in added:
                    added.add(member)
                    archive.add(member, arcname=member.relative_to(root).as_posix(), recursive=False)
    spool.seek(0)
    return spool, file.resolve().relative_to(root).as_posix(), str(root)
