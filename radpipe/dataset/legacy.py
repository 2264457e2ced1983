"""Datasets written before tables were Delta tables (format 1: Parquet files published by rename).

Their files become version 1 of each table, unchanged (one commit adding every file in the folder), the first
time a radpipe with Delta tables opens the dataset; `_meta.json` then says format 2, so the folders are not
listed again.
"""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from radpipe.dataset import delta
from radpipe.dataset.guard import META_FILE
from radpipe.dataset.schema import TABLES
from radpipe.dataset.store import DatasetStore

FORMAT = 2
_CONVERSION = "radpipe-format-2"  # the commit's application transaction: a retried conversion adds nothing


def upgrade(store: DatasetStore) -> int:
    """Convert a format-1 dataset's tables in place; the number of tables converted (0 for a current one)."""
    meta_path = store.path(META_FILE)
    if store.versions is not None or not store.fs.exists(meta_path):
        return 0
    with store.fs.open(meta_path, "r") as fh:
        meta = json.load(fh)
    if int(meta.get("format", 1)) >= FORMAT:
        return 0
    converted = 0
    for table in TABLES:
        if delta.open_table(store.table_uri(table)) is not None:
            continue
        files = []
        for path in store.physical_files(table):
            with store.fs.open(path, "rb") as fh:
                rows = pq.ParquetFile(fh).metadata.num_rows
            files.append(delta.DataFile(path.rsplit("/", 1)[1], int(store.fs.size(path)), int(rows)))
        if files:
            delta.commit(store.table_uri(table), TABLES[table], _CONVERSION, files)
            converted += 1
    meta["format"] = FORMAT
    temporary = meta_path + ".tmp"
    with store.fs.open(temporary, "w") as fh:
        json.dump(meta, fh)
    store.fs.mv(temporary, meta_path)
    return converted
