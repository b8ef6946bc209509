"""From a datastore to an fsspec filesystem and the root path inside it."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from smalt.entities import Datastore
from smalt.errors import ConfigurationError, InvalidSpecError, NotFoundError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

#: The fsspec implementation each datastore type needs, and the extra that installs it.
_PACKAGES = {
    "azure_blob": ("adlfs", "azure"),
    "azure_data_lake_gen2": ("adlfs", "azure"),
    "s3": ("s3fs", "s3"),
    "gcs": ("gcsfs", "gcs"),
}


@dataclass(frozen=True)
class Location:
    """A filesystem and a root folder in it; every datastore path is relative to the root."""

    fs: AbstractFileSystem
    root: str

    def join(self, relative: str) -> str:
        """The path of ``relative`` in the filesystem; raises when it would leave the root (a
        ``..`` segment or a NUL byte: every caller hands in paths it has normalised already)."""
        relative = relative.strip("/")
        if "\x00" in relative or ".." in relative.replace("\\", "/").split("/"):
            raise InvalidSpecError.one(f"The path {relative!r} leads outside its datastore.", "path")
        return f"{self.root.rstrip('/')}/{relative}" if relative else self.root

    def inside(self, relative: str) -> str:
        """``join``, and on a local disk the place itself: a symbolic link on the way that leads
        out of the root is refused, so that a stored link never serves a file from elsewhere."""
        target = self.join(relative)
        from fsspec.implementations.local import LocalFileSystem

        if isinstance(self.fs, LocalFileSystem):
            real, root = os.path.realpath(target), os.path.realpath(self.root)
            if real != root and not real.startswith(root.rstrip("/") + "/"):
                raise NotFoundError(f"No file at '{relative}': it is a link that leads outside its datastore.")
        return target


def _require(type_: str) -> None:
    package, extra = _PACKAGES[type_]
    if importlib.util.find_spec(package) is None:
        raise ConfigurationError(
            f"Datastores of type {type_} need the {package} package, which is not installed.",
            hint=f"pip install 'smalt[{extra}]'",
        )


def open_location(datastore: Datastore, secrets: dict[str, str]) -> Location:
    """Open the filesystem behind ``datastore``; ``secrets`` are its decrypted credentials."""
    import fsspec  # imported here: commands that only read metadata never pay for it

    creds = datastore.credentials
    if datastore.url:
        fs, root = fsspec.core.url_to_fs(datastore.url)
        return Location(fs, root)
    if datastore.type == "local":
        assert datastore.path is not None
        return Location(fsspec.filesystem("file", auto_mkdir=True), datastore.path)
    if datastore.type in ("azure_blob", "azure_data_lake_gen2"):
        _require(datastore.type)
        options: dict[str, Any] = {"account_name": datastore.account_name}
        for key in ("account_key", "sas_token", "client_secret"):
            if key in secrets:
                options[key] = secrets[key]
        if creds is not None and creds.client_id:
            options.update(tenant_id=creds.tenant_id, client_id=creds.client_id)
        if datastore.endpoint != "core.windows.net":
            options["account_host"] = f"{datastore.account_name}.blob.{datastore.endpoint}"
        root = datastore.container_name or datastore.filesystem or ""
        return Location(fsspec.filesystem("abfs", **options), root)
    if datastore.type == "s3":
        _require("s3")
        options = {}
        if creds is not None and creds.access_key_id:
            options.update(key=creds.access_key_id, secret=secrets.get("secret_access_key"))
            if "session_token" in secrets:
                options["token"] = secrets["session_token"]
        else:
            options["anon"] = False
        client_kwargs: dict[str, Any] = {}
        if datastore.endpoint_url:
            options["endpoint_url"] = datastore.endpoint_url
        if datastore.region:
            client_kwargs["region_name"] = datastore.region
        if client_kwargs:
            options["client_kwargs"] = client_kwargs
        root = "/".join(filter(None, [datastore.bucket, (datastore.prefix or "").strip("/")]))
        return Location(fsspec.filesystem("s3", **options), root)
    if datastore.type == "gcs":
        _require("gcs")
        options = {"project": datastore.project} if datastore.project else {}
        if "token" in secrets:
            options["token"] = secrets["token"]
        root = "/".join(filter(None, [datastore.bucket, (datastore.prefix or "").strip("/")]))
        return Location(fsspec.filesystem("gcs", **options), root)
    raise ConfigurationError(
        f"Datastore '{datastore.name}' is of type {datastore.type}, whose bytes smalt cannot read yet.",
        hint="its definition and credentials are kept; use azure_blob or azure_data_lake_gen2 for Azure storage bytes",
    )
