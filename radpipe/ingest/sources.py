"""Walk a source (local path or fsspec URL) into files to ingest, without reading them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import fsspec
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem
from fsspec.spec import AbstractFileSystem

from radpipe.engine import Engine, TaskFailure
from radpipe.errors import SourceError


@dataclass(frozen=True)
class FilePart:
    """A byte range of a line-oriented file, from a line start to a line start (radpipe/ingest/report_parts.py)."""

    start: int
    end: int
    first_line: int  # the number of its first line in the whole file (1 for the first part)
    final: bool  # the last part: its batch records the file in the ledger
    encoding: str


@dataclass(frozen=True)
class SourceFile:
    """A file to ingest: where it is (never shown), its keyed name, and its change marker."""

    url: str  # protocol-qualified, so a Dask worker on another host can open it
    source_key: str
    size: int
    mtime: str
    part: FilePart | None = None  # a range of a large report file read by its own task; None: the whole file

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


@dataclass(frozen=True)
class WalkError:
    """A folder that could not be listed: its files cannot be counted, so it is reported instead."""

    url: str
    error: str
    file: bool = False  # a listed file that could not be found or read, not a folder

    @property
    def detail(self) -> str:
        return f"{'file' if self.file else 'folder'} not listable ({self.error})"


def _walk_local(root: str) -> Iterator[tuple[str, int, str] | WalkError]:
    """os.walk following symbolic links (archives are often assembled from links), loop-safe."""
    seen: set[tuple[int, int]] = set()
    errors: list[OSError] = []
    for folder, dirs, files in os.walk(root, onerror=errors.append, followlinks=True):
        while errors:
            failed = errors.pop()
            yield WalkError("file://" + str(failed.filename or folder), type(failed).__name__)
        info = os.stat(folder)
        if (info.st_dev, info.st_ino) in seen:
            dirs[:] = []  # a link back up the tree: do not walk it twice
            continue
        seen.add((info.st_dev, info.st_ino))
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            try:
                stat = os.stat(path)
            except OSError as exc:
                yield WalkError("file://" + path, type(exc).__name__)
                continue
            yield "file://" + path, stat.st_size, str(stat.st_mtime)
    while errors:
        failed = errors.pop()
        yield WalkError("file://" + str(failed.filename or root), type(failed).__name__)


def walk(source: str, folder: bool = False) -> Iterator[tuple[str, int, str] | WalkError]:
    """(url, size, change marker) of every file under `source` (a file or a folder; `folder`: taken as a folder
    even when an object of that name exists, a zero-byte folder marker), sorted.

    Folders that cannot be listed come back as WalkError, never silently skipped.
    """
    check_source(source)
    fs, root = url_to_fs(source)
    if not folder and fs.isfile(root):
        info = fs.info(root)
        yield fs.unstrip_protocol(root), int(info.get("size") or 0), _marker(info)
        return
    if isinstance(fs, LocalFileSystem):
        yield from _walk_local(root)
        return
    errors: list[Exception] = []
    try:
        if type(fs).find is AbstractFileSystem.find:  # the generic walk reports unlistable folders one by one
            entries = fs.find(root, detail=True, withdirs=False, on_error=errors.append)
        else:  # object stores list a prefix in one call (s3fs's find takes no on_error)
            entries = fs.find(root, detail=True, withdirs=False)
    except (OSError, PermissionError) as exc:
        yield WalkError(fs.unstrip_protocol(root), type(exc).__name__)
        return
    for error in errors:
        yield WalkError(fs.unstrip_protocol(root), type(error).__name__)
    folders = _folders(entries)
    for path in sorted(entries):
        info = entries[path]
        if _is_folder_marker(path, info, folders):
            continue
        yield fs.unstrip_protocol(path), int(info.get("size") or 0), _marker(info)


def _folders(entries: dict[str, dict[str, object]]) -> set[str]:
    """Every folder above a listed object ("bucket/a/b" for "bucket/a/b/c.dcm")."""
    folders: set[str] = set()
    for path in entries:
        parts = path.rstrip("/").split("/")
        folders.update("/".join(parts[:n]) for n in range(1, len(parts)))
    return folders


def _is_folder_marker(path: str, info: dict[str, object], folders: set[str]) -> bool:
    """A zero-byte object standing for a folder (the AWS console's "Create folder", Hadoop S3A, pyarrow):
    named with a trailing slash or by a folder that holds other objects. It is not a file of the archive."""
    if info.get("type") == "directory":
        return True
    empty = str(info.get("size") or 0) == "0"
    return empty and (path.endswith("/") or str(info.get("name", path)).endswith("/") or path.rstrip("/") in folders)


def walk_split(source: str, engine: Engine) -> Iterator[tuple[str, int, str] | WalkError]:
    """`walk`, with an object-store folder listed a top-level prefix per task on the engine's workers.

    The same entries in the same (sorted) order as `walk`. A folder on local disk is walked by this process
    (one `os.walk` is faster than shipping it, and its link-loop guard needs the whole tree); so is a source
    with fewer than two prefixes, or an engine with one worker.
    """
    check_source(source)
    fs, root = url_to_fs(source)
    if isinstance(fs, LocalFileSystem) or engine.workers < 2 or fs.isfile(root):
        yield from walk(source)
        return
    try:
        fs.invalidate_cache(root)  # a listing cached earlier in this process would miss new prefixes
        top = fs.ls(root, detail=True)
    except (OSError, PermissionError) as exc:
        yield WalkError(fs.unstrip_protocol(root), type(exc).__name__)
        return
    folders = [entry["name"] for entry in top if entry.get("type") == "directory"]
    if len(folders) < 2:
        yield from walk(source)
        return
    entries: list[tuple[str, int, str]] = []
    errors: list[WalkError] = []
    marked = set(folders) | {root.rstrip("/")}
    for entry in top:  # objects at the top level, beside the prefixes
        name = entry["name"]
        if entry.get("type") != "directory" and not _is_folder_marker(name, entry, marked):
            entries.append((fs.unstrip_protocol(name), int(entry.get("size") or 0), _marker(entry)))
    tasks = [(fs.unstrip_protocol(folder),) for folder in folders]
    for listed in engine.map_unordered(_list_prefix, tasks, max_in_flight=2 * engine.workers):
        if isinstance(listed, TaskFailure):
            errors.append(WalkError(str(listed.args[0]), "worker lost while listing"))
            continue
        errors.extend(item for item in listed if isinstance(item, WalkError))
        entries.extend(item for item in listed if not isinstance(item, WalkError))
    yield from sorted(entries)
    yield from errors


def _list_prefix(prefix: str) -> list[tuple[str, int, str] | WalkError]:
    """On a worker: one prefix's entries (a remote listing returns them all at once anyway)."""
    return list(walk(prefix, folder=True))  # "a/" listed though a marker object "a" exists
