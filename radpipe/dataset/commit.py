"""Publishing staged files: one manifest per batch, then one Delta commit per table it touches.

A batch stages its files under `_staging/<batch>/`. Publishing writes a `COMMIT` manifest (atomically: temp
file, then rename) naming, per table, the files to add and the files they replace; then, table by table (the
record tables `_ledger/`, `_erasures/`, `_withheld/` last), moves the staged files into the table's folder and
commits them to its Delta log with the batch's id as the commit's application transaction; then removes the
files a purge names (erasure, withheld records: their rows must not survive in any retained version); then
the staging folder. `recover()` at the start of every run finishes any batch whose manifest exists (a table
that already holds the batch's commit is skipped) and deletes any that has none, so a kill -9 at any point
leaves neither partial nor doubled rows once the next run starts.

A replaced file gets a Delta remove action, not an overwrite: its bytes stay for time travel to older
versions until `radpipe optimize` vacuums them past retention (a purge removes them at once).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import posixpath
import secrets
from collections.abc import Collection, Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from radpipe.dataset import delta
from radpipe.dataset.schema import TABLES
from radpipe.dataset.store import STAGING, DatasetStore
from radpipe.errors import RadpipeError

COMMIT_FILE = "COMMIT"
RECORD_TABLES = ("_ledger", "_erasures", "_withheld")  # committed last: they say what the data tables hold


class StagingNotVisible(RadpipeError):
    """Workers staged files the driver cannot see: they do not share the dataset's storage."""


# A move: (staged file, absolute; or None to only remove) -> a path relative to the dataset root, "table/name".
# A target the table holds now is replaced: the staged file is added under a new name and the old one removed.
Move = tuple[str | None, str]


def commit(store: DatasetStore, batch_id: str, files: dict[str, str]) -> None:
    """Publish a staged ingest batch: each staged file becomes `table/part-<batch>[-suffix].parquet`."""
    moves: list[Move] = []
    for key, staged in files.items():
        table, _, suffix = key.partition("#")  # "quarantine#dedup": a second file for one table
        name = f"part-{batch_id}-{suffix}.parquet" if suffix else f"part-{batch_id}.parquet"
        moves.append((staged, posixpath.join(table, name)))
    commit_moves(store, batch_id, moves)


def commit_moves(
    store: DatasetStore, batch_id: str, moves: list[Move], purge: bool = False, purge_also: Iterable[str] = ()
) -> None:
    """Publish staged files onto tables (see Move); `purge` also deletes the replaced files' bytes, and
    `purge_also` further files (relative paths: those only older versions name) once every table committed."""
    missing = [final for staged, final in moves if staged is not None and not store.fs.exists(staged)]
    if missing:
        raise StagingNotVisible(
            f"batch files staged by a Dask worker are not visible here ({', '.join(sorted(missing))}): with "
            "RADPIPE_DASK_ADDRESS the dataset must be on storage that the workers and this machine share"
        )
    _apply(store, write_manifest(store, batch_id, moves, purge, purge_also))


def write_manifest(
    store: DatasetStore, batch_id: str, moves: list[Move], purge: bool = False, purge_also: Iterable[str] = ()
) -> dict[str, Any]:
    """Decide and record what publishing a batch does (the manifest); from here on it finishes, even after a kill."""
    plan = _plan(store, batch_id, moves)
    if purge:
        plan["purge"] = [path for entry in plan["tables"] for path in entry["removes"]]
    plan["purge"] += list(purge_also)
    manifest = store.path(STAGING, batch_id, COMMIT_FILE)
    temporary = manifest + ".tmp"
    store.fs.makedirs(store.path(STAGING, batch_id), exist_ok=True)
    with store.fs.open(temporary, "w") as fh:
        json.dump(plan, fh)
    store.fs.mv(temporary, manifest)
    return plan


def _plan(store: DatasetStore, batch_id: str, moves: list[Move]) -> dict[str, Any]:
    """The manifest: per table, [staged, target] pairs to add and the current files they replace."""
    tables: dict[str, dict[str, Any]] = {}
    current: dict[str, set[str]] = {}
    for number, (staged, final) in enumerate(moves):
        table, name = final.split("/", 1)
        if table not in current:  # one snapshot read per table, not per move
            current[table] = {store.relative(p) for p in store.table_files(table)}
        held = current[table]
        entry = tables.setdefault(table, {"table": table, "adds": [], "removes": []})
        if final in held:
            entry["removes"].append(final)
            final = f"{table}/part-{batch_id}-{number}.parquet"
        if staged is not None:
            entry["adds"].append([store.relative(staged), final])
    ordered = sorted(tables.values(), key=lambda entry: entry["table"] in RECORD_TABLES)
    return {"batch_id": batch_id, "tables": ordered, "purge": []}


def _apply(store: DatasetStore, plan: dict[str, Any]) -> None:
    """Do what a manifest lists; every step is done already or still to do, so a retry finishes it."""
    if "moves" in plan:  # a manifest of format 1 (renames only), left by a crash before the upgrade to Delta
        plan = _from_format_1(store, plan)
    batch_id = plan["batch_id"]
    for entry in plan["tables"]:
        table = entry["table"]
        uri = store.table_uri(table)
        loaded = store.snapshot(table)
        if delta.committed(loaded, batch_id):
            continue
        adds = []
        for staged, final in entry["adds"]:
            source, target = store.path(staged), store.path(final)
            if source != target and store.fs.exists(source):
                store.fs.makedirs(posixpath.dirname(target), exist_ok=True)
                store.fs.mv(source, target)
            elif not store.fs.exists(target):
                raise RuntimeError(f"commit of batch {batch_id} is broken: {staged} and {final} are both missing")
            adds.append(_data_file(store, table, target))
        removes = [final.split("/", 1)[1] for final in entry["removes"]]
        delta.commit(uri, TABLES[table], batch_id, adds, removes, table=loaded)
    for path in plan.get("purge", []):
        if store.fs.exists(store.path(path)):
            store.fs.rm(store.path(path))
    store.fs.rm(store.path(STAGING, batch_id), recursive=True)


def _from_format_1(store: DatasetStore, old: dict[str, Any]) -> dict[str, Any]:
    """Its renames as a Delta plan: a file still staged is added (replacing, under a new name, a file the table
    holds); one already renamed into place under a name no table version holds is added where it is."""
    moves: list[Move] = []
    in_place: list[tuple[str, str]] = []
    for staged, final in old["moves"]:
        table = final.split("/", 1)[0]
        if store.fs.exists(store.path(staged)):
            moves.append((store.path(staged), final))
        elif final not in {store.relative(p) for p in store.table_files(table)} and store.fs.exists(store.path(final)):
            in_place.append((table, final))
    plan = _plan(store, old["batch_id"], moves)
    for table, final in in_place:
        entry = next((e for e in plan["tables"] if e["table"] == table), None)
        if entry is None:
            entry = {"table": table, "adds": [], "removes": []}
            plan["tables"].append(entry)
        entry["adds"].append([final, final])
    plan["tables"].sort(key=lambda entry: entry["table"] in RECORD_TABLES)
    return plan


def _data_file(store: DatasetStore, table: str, path: str) -> delta.DataFile:
    with store.fs.open(path, "rb") as fh:
        rows = pq.ParquetFile(fh).metadata.num_rows
    return delta.DataFile(posixpath.relpath(path, store.path(table)), int(store.fs.size(path)), int(rows))


def recover(store: DatasetStore) -> tuple[int, int]:
    """Finish committed batches and drop uncommitted ones; (finished, dropped). Call under the lock."""
    staging = store.path(STAGING)
    if not store.fs.exists(staging):
        return 0, 0
    finished = dropped = 0
    for folder in store.fs.ls(staging, detail=False):
        manifest = posixpath.join(folder, COMMIT_FILE)
        if store.fs.exists(manifest):
            with store.fs.open(manifest, "r") as fh:
                _apply(store, json.load(fh))
            finished += 1
            continue
        # An object store (or a filer behind one) may keep an emptied prefix listed: nothing to roll back there.
        held = _holds_files(store, folder)
        store.fs.rm(folder, recursive=True)
        dropped += held
    return finished, dropped


def _holds_files(store: DatasetStore, folder: str) -> bool:
    """Whether a staging folder holds any file (an emptied prefix may still list itself for a while)."""
    if not store.fs.isdir(folder):
        return True
    entries = store.fs.find(folder, withdirs=False, detail=True)
    return any(
        info.get("type") != "directory" and path.rstrip("/") != folder.rstrip("/") for path, info in entries.items()
    )


def replace_table(store: DatasetStore, table: str, data: pa.Table) -> None:
    """Replace a derived table (studies/, curation/) with `data`: a new table version."""
    stream_table(store, table, [data], data.schema)


def stream_table(store: DatasetStore, table: str, parts: Iterable[pa.Table], schema: pa.Schema) -> None:
    """Replace a derived table from parts written as they come (bounded memory), as one new table version.

    Content that equals the table's current file commits nothing: a re-derived table that did not change keeps
    its version (and the dataset its dataset_version).
    """
    batch_id = f"{table}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    staged = store.path(STAGING, batch_id, f"{table}.parquet")
    store.fs.makedirs(posixpath.dirname(staged), exist_ok=True)
    with store.fs.open(staged, "wb") as fh, pq.ParquetWriter(fh, schema, compression="zstd") as writer:
        for part in parts:
            writer.write_table(part)
    content = _digest(store, staged)
    current = [store.relative(p) for p in store.table_files(table)]
    if len(current) == 1 and posixpath.basename(current[0]).startswith(f"part-{content}-"):
        store.fs.rm(store.path(STAGING, batch_id), recursive=True)
        return
    moves: list[Move] = [(staged, f"{table}/part-{content}-{batch_id}.parquet")]
    moves += [(None, path) for path in current]
    commit_moves(store, batch_id, moves)


def update_table(store: DatasetStore, table: str, data: pa.Table, key: str) -> None:
    """Bring a derived table (studies/) to `data`, rewriting only the files whose rows changed.

    A file all of whose rows `data` holds unchanged stays (and with it the PHI gate's reading of it); rows of
    other files, changed rows and new rows go to one new file, which carries `data`'s schema metadata (when only
    the metadata changed, the smallest file is written again to carry it). An update that changes nothing commits
    nothing. Falls back to
    rewriting the whole table when `key` is not unique on either side.
    """
    files = store.table_files(table)
    names = data.schema.names
    parts = []
    for number, file in enumerate(files):
        with store.fs.open(file, "rb") as fh:
            part = pq.read_table(fh, use_threads=False)
        if part.schema.names != names:
            return replace_table(store, table, data)  # a file from an older schema: rewrite all
        parts.append(part.append_column("__file", pa.array([number] * len(part), pa.int32())))
    if not parts or not (_unique(data[key]) and _unique(pa.concat_tables(parts)[key])):
        return replace_table(store, table, data)
    current = pa.concat_tables(parts)
    current = current.append_column("__row", pa.array(range(len(current)), pa.int64()))
    joined = current.join(data, key, join_type="inner", right_suffix="__new")
    same = _same_values(joined, names, key, pa.array([True] * len(joined), pa.bool_()))
    unchanged = joined.filter(same)
    gone = current.filter(pc.invert(pc.is_in(current["__row"], unchanged["__row"].combine_chunks())))
    changed = set(pc.unique(gone["__file"]).to_pylist()) | {n for n, part in enumerate(parts) if not len(part)}
    kept = [n for n in range(len(files)) if n not in changed]
    stored = unchanged.filter(pc.is_in(unchanged["__file"], pa.array(kept, pa.int32())))[key].combine_chunks()
    fresh = data.filter(pc.invert(pc.is_in(data[key], stored)))
    wanted = (data.schema.metadata or {}).items()
    recorded = any(wanted <= (part.schema.metadata or {}).items() for part in parts)
    if not len(fresh) and not (changed - {n for n, part in enumerate(parts) if not len(part)}):
        if recorded:
            return  # the same rows, and a file already carries the metadata
        if kept:  # only the metadata is new: the smallest file is written again to carry it (no extra file)
            carrier = min(kept, key=lambda n: len(parts[n]))
            changed.add(carrier)
            fresh = data.filter(pc.is_in(data[key], parts[carrier][key].combine_chunks()))
    batch_id = f"{table}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    staged = store.path(STAGING, batch_id, f"{table}.parquet")
    store.fs.makedirs(posixpath.dirname(staged), exist_ok=True)
    with store.fs.open(staged, "wb") as fh:
        pq.write_table(fresh, fh, compression="zstd")
    moves: list[Move] = [(staged, f"{table}/part-{_digest(store, staged)}-{batch_id}.parquet")]
    moves += [(None, store.relative(files[n])) for n in sorted(changed)]  # and zero-row files of older metadata
    commit_moves(store, batch_id, moves)


RECORD_PREFIX = "part-record-"  # a zero-row file that only carries a derived table's schema metadata


def upsert_rows(store: DatasetStore, table: str, rows: pa.Table, key: str, keys: Collection[str]) -> None:
    """Make the rows of `keys` those in `rows` (a key of `keys` that `rows` lacks is deleted), leaving every other
    row where it is.

    Only files holding a row of `keys` are read (the key column first); one whose rows `rows` holds unchanged
    stays, others are rewritten into the one new file with the new and changed rows, which carries `rows`'
    schema metadata (a zero-row file when no row changed). Cost follows `keys`, not the table.
    """
    wanted = set(keys)
    held_keys: dict[str, set[str]] = {}  # file -> its rows' keys among `keys`
    changed: set[str] = set()
    for group in store.iter_row_groups(table, where=(key, wanted)):
        held = group.rows.select(rows.schema.names)
        present = rows.append_column("__present", pa.array([True] * len(rows), pa.bool_()))
        joined = held.join(present, key, join_type="left outer", right_suffix="__new")
        # a held row `rows` lacks is deleted
        same = _same_values(joined, rows.schema.names, key, pc.fill_null(joined["__present"], False))
        held_keys.setdefault(group.file, set()).update(held[key].to_pylist())
        if not (pc.all(same).as_py() and len(joined) == len(held)):
            changed.add(group.file)  # the whole file is rewritten, whichever of its row groups changed
    carried = []
    for file in sorted(changed):
        with store.fs.open(file, "rb") as fh:
            other = pq.read_table(fh, columns=rows.schema.names, use_threads=False)
        carried.append(
            other.filter(pc.invert(pc.is_in(other[key], pa.array(sorted(wanted), other.schema.field(key).type))))
        )
    stored = {k for file, found in held_keys.items() if file not in changed for k in found}
    fresh = rows.filter(pc.invert(pc.is_in(rows[key], pa.array(sorted(stored), rows.schema.field(key).type))))
    written = pa.concat_tables([fresh, *(part.cast(rows.schema) for part in carried)])
    records = [f for f in store.table_files(table) if posixpath.basename(f).startswith(RECORD_PREFIX)]
    batch_id = f"{table}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    staged = store.path(STAGING, batch_id, f"{table}.parquet")
    store.fs.makedirs(posixpath.dirname(staged), exist_ok=True)
    with store.fs.open(staged, "wb") as fh:
        pq.write_table(written, fh, compression="zstd")
    prefix = RECORD_PREFIX if not len(written) else "part-"
    moves: list[Move] = [(staged, f"{table}/{prefix}{_digest(store, staged)}-{batch_id}.parquet")]
    moves += [(None, store.relative(file)) for file in sorted(changed | set(records))]
    commit_moves(store, batch_id, moves)


def _same_values(joined: pa.Table, names: list[str], key: str, start: pa.Array) -> pa.Array:
    """Per joined row, `start` and whether every column equals its "__new" twin (two nulls are equal)."""
    same = start
    for name in (n for n in names if n != key):
        left, right = joined[name], joined[f"{name}__new"]
        equal = pc.or_kleene(pc.equal(left, right), pc.and_(pc.is_null(left), pc.is_null(right)))
        same = pc.and_(same, pc.fill_null(equal, False))
    return same


def _unique(column: pa.ChunkedArray) -> bool:
    return column.null_count == 0 and pc.count_distinct(column).as_py() == len(column)


def _digest(store: DatasetStore, path: str) -> str:
    digest = hashlib.sha256()
    with store.fs.open(path, "rb") as fh:
        while chunk := fh.read(8 * 1024**2):
            digest.update(chunk)
    return digest.hexdigest()[:16]
