"""Bytes: datastores opened through fsspec, content-addressed uploads, downloads, artifact files."""

from smalt.artifacts.content import (
    Entry,
    download,
    list_entries,
    list_files,
    path_digest,
    promote,
    read_stream,
    upload,
    verify_upload,
    write_stream,
)
from smalt.artifacts.filesystems import Location, open_location

__all__ = [
    "Entry",
    "Location",
    "download",
    "list_entries",
    "list_files",
    "open_location",
    "path_digest",
    "promote",
    "read_stream",
    "upload",
    "verify_upload",
    "write_stream",
]
