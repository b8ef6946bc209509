"""Parsing the references Azure ML files use: ``azureml:name:version``, ``azureml:name@label``,
``azureml://datastores/<ds>/paths/<p>``, and telling local paths from URIs."""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smalt.errors import InvalidSpecError, SpecProblem

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_DATASTORE_URI = re.compile(
    r"^azureml://(?:subscriptions/[^/]+/resourcegroups/[^/]+/(?:providers/[^/]+/)?workspaces/[^/]+/)?"
    r"datastores/(?P<datastore>[^/]+)/paths/?(?P<path>.*)$",
    re.IGNORECASE,
)
_ASSET_REF = re.compile(
    r"^azureml:(?!//)(?P<name>[A-Za-z0-9][A-Za-z0-9\-_.]*?)(?::(?P<version>[A-Za-z0-9\-_.]+)|@(?P<label>[A-Za-z0-9\-_.]+))?$"
)
_ASSET_ID = re.compile(
    r"^azureml://(?:.*/)?(?P<kind>data|environments|components|models)/(?P<name>[^/]+)"
    r"(?:/versions/(?P<version>[^/]+)|/labels/(?P<label>[^/]+))?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class DatastoreUri:
    datastore: str
    path: str

    def __str__(self) -> str:
        return f"azureml://datastores/{self.datastore}/paths/{self.path}"


@dataclass(frozen=True)
class AssetRef:
    """A reference to an asset version: exactly one of ``version`` and ``label`` is set."""

    name: str
    version: str | None = None
    label: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"azureml:{self.name}:{self.version}"
        return f"azureml:{self.name}@{self.label or 'latest'}"


def is_local_path(value: str) -> bool:
    """A path on this machine, as opposed to a URI or an ``azureml:`` reference."""
    if value.startswith("file:"):
        return True
    # ${{parent.inputs.x}} and other bindings are resolved by the pipeline, not the file system;
    # runs:/<run>/<path> and models:/<name>/<version> are MLflow's URIs (one slash, no authority).
    return not (_SCHEME.match(value) or value.startswith(("azureml:", "${{", "runs:/", "models:/")))


def check_local_data(data_type: str, local: Path) -> None:
    """Refuse a data asset whose local ``path`` is not what its type needs (a folder for
    ``uri_folder``, ...): checked where the files are, before any is uploaded."""
    wrong: tuple[str, str | None] | None = None
    if data_type == "uri_file" and not local.is_file():
        wrong = f"type uri_file needs a file, and '{local}' is a folder", "use type: uri_folder for a folder"
    elif data_type == "uri_folder" and not local.is_dir():
        wrong = f"type uri_folder needs a folder, and '{local}' is a file", "use type: uri_file for a single file"
    elif data_type == "mltable" and not (local / "MLTable").is_file():
        wrong = f"type mltable needs a folder with an MLTable file; '{local}' has none", None
    if wrong is not None:
        raise InvalidSpecError([SpecProblem(wrong[0], "path")], summary="Invalid spec", hint=wrong[1])


def check_scoring_script(code: Any, file: str | None = None) -> None:
    """Refuse a deployment's ``code_configuration`` (``code``) whose scoring script is not in its
    code folder, as the folder is here (before it is uploaded, or once it is copied back)."""
    if code is not None and not (Path(code.code) / code.scoring_script).is_file():
        raise InvalidSpecError(
            [SpecProblem(f"scoring script '{code.scoring_script}' is not in {code.code}",
                         "code_configuration.scoring_script", file=file)],
            summary=f"Invalid deployment spec in {file}" if file is not None else "Invalid deployment spec",
        )  # fmt: skip


def refuse_occupied(target: Path) -> None:
    """A package is written only to a new or empty folder."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        from smalt.errors import AlreadyExistsError

        raise AlreadyExistsError(
            f"Cannot write the package to {target}: it exists and is not an empty folder.",
            hint="give a new folder, or remove that one first",
        )


def parse_datastore_uri(value: str) -> DatastoreUri | None:
    """The datastore and the path inside it; raises when the path would leave the datastore."""
    match = _DATASTORE_URI.match(value)
    if match is None:
        return None
    return DatastoreUri(match["datastore"], confined_path(match["path"], value))


def confined_path(path: str, named: str | None = None, *, field: str = "path") -> str:
    """``path`` as a relative path inside whatever it is relative to (a datastore, a run's
    artifacts, a job's output), with ``.`` and ``..`` folded away; raises when it would leave it.

    The check is made on the path as any layer below might read it: percent-decoded (repeatedly)
    and with backslashes as separators, so ``%2e%2e/`` and ``..\\`` leave nothing either. A NUL
    byte is refused: no file system takes one.
    """
    decoded = path
    for _ in range(4):
        once = urllib.parse.unquote(decoded)
        if once == decoded:
            break
        decoded = once
    _fold(decoded.replace("\\", "/"), named or path, field)  # as a layer below might read it
    return _fold(path, named or path, field)


def _fold(path: str, named: str, field: str) -> str:
    """``path`` with empty, ``.`` and ``..`` segments folded away; raises past its root or on NUL."""
    if "\x00" in path:
        raise InvalidSpecError.one(f"{named!r} holds a NUL byte", field)
    kept: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if not kept:
                raise InvalidSpecError.one(f"{named!r} leads outside the place it names ('..' past its root)", field)
            kept.pop()
        elif part not in ("", "."):
            kept.append(part)
    return "/".join(kept)


def parse_asset_ref(value: str) -> AssetRef | None:
    """``azureml:iris:3``, ``azureml:iris@latest``, ``azureml:iris`` (latest), or an asset id.

    Returns None when ``value`` is not an asset reference at all.
    """
    if parse_datastore_uri(value) is not None:
        return None  # a datastore path may well contain data/<x>/versions/<n> or models/<x>
    match = _ASSET_REF.match(value)
    if match is None:
        match = _ASSET_ID.match(value)
        if match is None or value.lower().startswith("azureml://datastores/"):
            return None
    version, label = match["version"], match["label"]
    return (
        AssetRef(match["name"], version, label if version is None else None)
        if (version or label)
        else AssetRef(match["name"], None, "latest")
    )


def require_asset_ref(value: str, field: str) -> AssetRef:
    ref = parse_asset_ref(value)
    if ref is None:
        raise InvalidSpecError(
            [
                SpecProblem(
                    f"{value!r} is not a reference; write azureml:<name>:<version> or azureml:<name>@latest", field
                )
            ]
        )
    return ref


@dataclass(frozen=True)
class Submission:
    """The files a client sent with a spec, unpacked at ``root``; ``origin`` is the folder they
    came from on the client, so that an absolute path the client wrote still finds its file."""

    root: Path
    origin: str


_SUBMISSION: ContextVar[Submission | None] = ContextVar("smalt_submission", default=None)


@contextmanager
def confined_to(submission: Submission) -> Iterator[None]:
    """Within this block every local path a spec names must lie inside ``submission.root``: a
    server reads the files its client sent, never its own."""
    token = _SUBMISSION.set(submission)
    try:
        yield
    finally:
        _SUBMISSION.reset(token)


def resolve_local(value: str, base_dir: Path) -> str:
    """A local path made absolute against ``base_dir`` (the YAML file's folder); URIs unchanged."""
    if not is_local_path(value):
        return value
    if value.startswith("file:"):
        value = value.removeprefix("file://").removeprefix("file:")
    submission = _SUBMISSION.get()
    if submission is None:
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else (base_dir / path).resolve())
    return str(_inside(submission, value, base_dir))


def _inside(submission: Submission, value: str, base_dir: Path) -> Path:
    if "\x00" in value or value.startswith("~"):
        raise InvalidSpecError.one(f"{value!r} is not a path the submission can name", "path")
    path = Path(value)
    if path.is_absolute():
        relative = os.path.relpath(path, submission.origin) if submission.origin else ".."
        path = submission.root / relative
    else:
        path = base_dir / path
    resolved = path.resolve()
    root = submission.root.resolve()
    if resolved != root and root not in resolved.parents:
        raise InvalidSpecError.one(
            f"{value!r} lies outside the files sent with the submission",
            "path",
        )
    return resolved
