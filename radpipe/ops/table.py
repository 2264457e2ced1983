"""RADPIPE_HOME/ops/: an append-only Parquet table, one file per appended batch of rows.

A file is written under a temporary name and renamed into place, so a reader (the dashboard, DuckDB,
polars) never sees half a row, and two flows finishing at once never write the same file.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from radpipe.errors import SourceError
from radpipe.ops.row import OpsRow

OPS_DIR = "ops"
_PART_PREFIX = "part-"
_TMP_PREFIX = ".tmp-"

OPS_SCHEMA = pa.schema(
    [
        pa.field("flow", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),  # Prefect flow run id
        pa.field("started_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("duration_s", pa.float64(), nullable=False),
        pa.field("status", pa.string(), nullable=False),  # completed | failed
        pa.field("error", pa.string()),  # exception type of a failed run, never its message
        pa.field("dataset", pa.string()),  # dataset URI
        pa.field("dataset_version", pa.string()),
        pa.field("files_seen", pa.int64()),
        pa.field("files_ingested", pa.int64()),
        pa.field("files_quarantined", pa.int64()),
        pa.field("quarantine_reasons", pa.string()),  # JSON object: reason -> count
        pa.field("phi_gate", pa.string()),  # passed | failed | none
        pa.field("validation", pa.string()),  # passed | failed | none
        pa.field("metrics", pa.string()),  # JSON object: metric -> last value
        pa.field("mlflow_run_id", pa.string()),  # the pretraining run (training curves)
        pa.field("model_versions", pa.string()),  # JSON list of models:/ URIs
        pa.field("champion", pa.string()),  # models:/ URI holding @champion after the run
    ]
)


def ops_dir(home: Path) -> Path:
    return Path(home) / OPS_DIR


def append_ops_row(home: Path, row: OpsRow | Mapping[str, Any]) -> Path:
    """Append one row; returns the file written."""
    return append_ops_rows(home, [row])


def append_ops_rows(home: Path, rows: Iterable[OpsRow | Mapping[str, Any]]) -> Path:
    """Append a batch of rows as one new file (temp name, then an atomic rename); returns the file."""
    records = [r.record() if isinstance(r, OpsRow) else dict(r) for r in rows]
    unknown = sorted({k for r in records for k in r} - set(OPS_SCHEMA.names))
    if unknown:
        raise ValueError(f"not columns of the ops table: {', '.join(unknown)}")
    table = pa.Table.from_pylist(records, schema=OPS_SCHEMA)
    folder = ops_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    name = f"{stamp}-{uuid.uuid4().hex[:12]}.parquet"
    final, temporary = folder / f"{_PART_PREFIX}{name}", folder / f"{_TMP_PREFIX}{name}"
    try:
        pq.write_table(table, temporary)
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    return final


def read_ops(home: Path) -> pa.Table:
    """Every row, oldest run first; an empty table (same schema) when nothing has run yet."""
    folder = ops_dir(home)
    if folder.exists() and not folder.is_dir():
        raise SourceError(f"not a folder: {folder}")
    files = sorted(folder.glob(f"{_PART_PREFIX}*.parquet")) if folder.exists() else []
    if not files:
        return OPS_SCHEMA.empty_table()
    # Files written by an older radpipe may lack newer columns: read each, then conform to today's schema.
    tables = [_conform(pq.read_table(f)) for f in files]
    table = pa.concat_tables(tables)
    return table.sort_by([("started_at", "ascending"), ("run_id", "ascending")])


def _conform(table: pa.Table) -> pa.Table:
    columns = [
        table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        for f in OPS_SCHEMA
    ]
    return pa.Table.from_arrays(columns, schema=OPS_SCHEMA)
