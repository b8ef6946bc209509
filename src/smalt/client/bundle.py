"""What a job submission carries to a server: its YAML file and every local file it names.

A server never reads a path its client names: the client packs the job file with the code
folders, data files, conda files and component files it refers to (and theirs) into one tar
archive, with the folder they share as its root. The server unpacks it into a scratch folder and
reads the spec confined to it (``smalt.specs.references.confined_to``).

Finding the files reads the YAML, not the entities: any local path under a key that names files
in Azure ML's schemas is taken, and a component file is followed into. Taking a file the spec
does not need costs bytes, never correctness; missing one makes the server say which path is not
there. Folders are packed as an upload takes them: ``.amlignore`` (or else ``.gitignore``) is
honoured and ``.git`` is left out. Standard library and ruamel.yaml only: ``smalt job create`` against a
server imports this and nothing heavier.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: Keys whose values are local paths in Azure ML's job, component and environment schemas.
_PATH_KEYS = frozenset({"code", "path", "conda_file", "component", "additional_includes"})
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_IGNORE_FILES = (".amlignore", ".gitignore")
_MENTIONS_PATHS = re.compile(rb"(?<![\w-])(?:%s)[\"']?\s*:" % b"|".join(k.encode() for k in sorted(_PATH_KEYS)))


def _local(value: str) -> bool:
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


def referenced(file: Path) -> set[Path]:
    """``file`` and every existing local file or folder it names, followed through component files."""
    found: set[Path] = set()
    pending = [file.resolve()]
    while pending:
        current = pending.pop()
        if current in found:
            continue
        found.add(current)
        for key, value in _strings(_read(current)):
            if not _local(value):
                continue
            path = Path(value.removeprefix("file://").removeprefix("file:")).expanduser()
            path = (path if path.is_absolute() else current.parent / path).resolve()
            if not path.exists():
                continue
            if key == "component" and path.is_file() and path.suffix in (".yml", ".yaml"):
                pending.append(path)
            else:
                found.add(path)
    return found


def _folder_files(folder: Path) -> Iterator[Path]:
    spec = None
    for name in _IGNORE_FILES:
        ignore = folder / name
        if ignore.is_file():
            import pathspec

            spec = pathspec.PathSpec.from_lines("gitwildmatch", ignore.read_text().splitlines())
            break
    for here, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(files):
            path = Path(here) / name
            if spec is None or not spec.match_file(path.relative_to(folder).as_posix()):
                yield path


def pack(file: Path) -> tuple[bytes, str, str]:
    """The tar archive of ``file`` and what it names, the job file's path inside it, and the
    archive's root on this machine (absolute paths in the spec are read against it)."""
    paths = referenced(file)
    root = Path(os.path.commonpath([str(p if p.is_dir() else p.parent) for p in paths]))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        added: set[Path] = set()
        for path in sorted(paths):
            if path.is_dir() and path != root:
                archive.add(path, arcname=path.relative_to(root).as_posix(), recursive=False)
            for member in _folder_files(path) if path.is_dir() else [path]:
                if member not in added:
                    added.add(member)
                    archive.add(member, arcname=member.relative_to(root).as_posix(), recursive=False)
    return buffer.getvalue(), file.resolve().relative_to(root).as_posix(), str(root)
