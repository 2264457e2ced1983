"""Reading a dataset's tables the way any tool does: as Delta tables (deltalake), no radpipe code."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable


def read_delta(folder: Path | str, columns: list[str] | None = None, version: int | None = None) -> pa.Table:
    """A table's rows at its latest version (or `version`), read by delta-rs."""
    return pa.table(DeltaTable(str(folder), version=version).to_pyarrow_table(columns=columns))


def commit_files(folder: Path | str, *names: str) -> None:
    """Add Parquet files already written into a table's folder to its Delta table (as a writer outside radpipe's
    ingest would: planted rows, tampered data, a table built by hand)."""
    import secrets

    import pyarrow.parquet as pq

    from radpipe.dataset import delta
    from radpipe.dataset.schema import TABLES

    folder = Path(folder)
    files = [
        delta.DataFile(n, (folder / n).stat().st_size, pq.ParquetFile(folder / n).metadata.num_rows) for n in names
    ]
    delta.commit(str(folder), TABLES[folder.name], f"test-{secrets.token_hex(4)}", files)
