"""Bytes: datastores opened through fsspec, content-addressed uploads, downloads."""

from smalt.artifacts.content import download, list_files, path_digest, promote, upload
from smalt.artifacts.filesystems import Location, open_location

__all__ = ["Location", "download", "list_files", "open_location", "path_digest", "promote", "upload"]
