"""A list of new objects instead of a listing: a newline list of paths or URLs, or an S3 Inventory CSV.

Listing 10^8 objects to find the few thousand new ones costs more than reading them. A manifest names the
objects of a run (an S3 Inventory report, the keys an upload job wrote): only those are considered, with the
size and modification time the inventory gives (no request per object), or asked of the store otherwise.
Entries outside the source are ignored; a listed object that cannot be found is quarantined, never dropped.
"""

from __future__ import annotations

import csv
import io
import posixpath
from collections.abc import Iterator
from urllib.parse import unquote

import fsspec
from fsspec.core import url_to_fs

from radpipe.errors import SourceError
from radpipe.ingest.sources import WalkError, check_source


def walk_manifest(manifest: str, source: str) -> Iterator[tuple[str, int, str] | WalkError]:
    """(url, size, change marker) of each manifest entry under `source`, in manifest order (sorted)."""
    check_source(source)
    fs, root = url_to_fs(source)
    try:
        with fsspec.open(manifest, "rt", compression="infer", encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, ValueError) as exc:
        raise SourceError(f"cannot read manifest {manifest!r} ({type(exc).__name__})") from None
    prefix = root.rstrip("/") + "/"
    entries: list[tuple[str, int | None, str]] = []
    for path, size, modified, absolute in _entries(text):
        if "://" in path:
            path = url_to_fs(path)[1]
        elif not absolute and not path.startswith("/"):  # relative to the source
            path = posixpath.join(root, path)
        path = posixpath.normpath(path) if not path.endswith("/") else path  # "src/../x" is not under src
        if path.startswith(prefix) and not path.endswith("/"):  # a folder marker is not an object to read
            entries.append((path, size, modified))
    for path, size, modified in sorted(set(entries)):
        if size is not None:
            yield fs.unstrip_protocol(path), size, modified
            continue
        try:
            info = fs.info(path)
        except FileNotFoundError:
            yield WalkError(fs.unstrip_protocol(path), "listed in the manifest but not found", file=True)
            continue
        except OSError as exc:
            yield WalkError(fs.unstrip_protocol(path), type(exc).__name__, file=True)
            continue
        marker = next((str(info[k]) for k in ("mtime", "LastModified", "ETag", "etag") if info.get(k)), "")
        yield fs.unstrip_protocol(path), int(info.get("size") or 0), marker


def _entries(text: str) -> Iterator[tuple[str, int | None, str, bool]]:
    """(path or URL, size or None, marker, absolute) per line.

    S3 Inventory CSV: "bucket","key","size","modified",... (keys URL-encoded; bucket/key is absolute). A newline
    list: URLs, absolute paths, or paths relative to the source.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and lines[0].startswith('"') and lines[0].count('","') >= 2:
        for row in csv.reader(io.StringIO("\n".join(lines))):
            bucket, key, size = row[0], unquote(row[1].replace("+", " ")), row[2]
            modified = row[3] if len(row) > 3 else ""
            yield f"{bucket}/{key}", int(size) if size.isdigit() else None, modified, True
        return
    for line in lines:
        yield line.strip(), None, "", False
