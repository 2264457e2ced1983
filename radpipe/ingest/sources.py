"""Walk a source (local path or fsspec URL) into files to ingest, without reading them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import fsspec
from fsspec.core import url_to_fs

from radpipe.errors import SourceError


@dataclass(frozen=True)
class SourceFile:
    """A file to ingest: where it is (never shown), its keyed name, and its change marker."""

    url: str  # protocol-qualified, so a Dask worker on another host can open it
    source_key: str
    size: int
    mtime: str

    def read(self) -> bytes:
        with fsspec.open(self.url, "rb") as fh:
            return fh.read()


def _marker(info: dict[str, object]) -> str:
    for key in ("mtime", "LastModified", "ETag", "etag", "updated", "created"):
        if info.get(key) is not None:
            return str(info[key])
    return ""


def check_source(source: str) -> None:
    """Fail early, with one clear line, when a source cannot be opened or does not exist."""
    try:
        fs, root = url_to_fs(source)
    except (ValueError, ImportError) as exc:
        raise SourceError(f"cannot open source {source!r}: {exc}") from None
    if not fs.exists(root):
        raise SourceError(f"source does not exist: {source}")


def walk(source: str) -> Iterator[tuple[str, int, str]]:
    """(url, size, change marker) of every file under `source` (a file or a folder), sorted."""
    check_source(source)
    fs, root = url_to_fs(source)
    if fs.isfile(root):
        entries = {root: fs.info(root)}
    else:
        entries = fs.find(root, detail=True, withdirs=False)
    for path in sorted(entries):
        info = entries[path]
        yield fs.unstrip_protocol(path), int(info.get("size") or 0), _marker(info)
