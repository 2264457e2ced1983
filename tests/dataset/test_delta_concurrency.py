"""Two processes committing to one Delta table at once lose nothing, on local disk and on a real S3 server.

Delta's log takes one file per version; a writer that finds its version taken re-reads and retries. On an
object store that needs a conditional write (put-if-absent): without it, the second writer would overwrite the
first's commit and its files would silently drop out of the table. Two writers creating one table at once make
one version 0 between them (delta-rs alone retries the loser's create as a second CREATE TABLE).
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fsspec.core import url_to_fs

from radpipe.dataset import delta
from radpipe.dataset.schema import TABLES
from radpipe.dataset.store import DatasetStore
from tests import s3server

s3_server = s3server.s3_server
s3_env = s3server.s3_env

COMMITS = 12
_WRITER = """
import sys, pyarrow as pa, pyarrow.parquet as pq
from radpipe.dataset import delta
from radpipe.dataset.schema import TABLES
from radpipe.dataset.store import DatasetStore
store, name = DatasetStore(sys.argv[1]), sys.argv[2]
store.fs.makedirs(store.path("quarantine"), exist_ok=True)
for n in range(int(sys.argv[3])):
    path = store.path("quarantine", f"part-{name}-{n}.parquet")
    with store.fs.open(path, "wb") as fh:
        pq.write_table(pa.table({"source_key": [f"{name}-{n}"]}), fh)
    file = delta.DataFile(f"part-{name}-{n}.parquet", store.fs.size(path), 1)
    delta.commit(store.table_uri("quarantine"), TABLES["quarantine"], f"{name}-{n}", [file])
"""


def _race(dataset: str) -> None:
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, dataset, name, str(COMMITS)], stderr=subprocess.PIPE)
        for name in ("a", "b")
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err.decode()[-2000:]
    keys = DatasetStore(dataset).read_table("quarantine", ["source_key"])["source_key"].to_pylist()
    assert sorted(keys) == sorted(f"{name}-{n}" for name in ("a", "b") for n in range(COMMITS))


def test_two_processes_commit_to_one_local_table_and_lose_nothing(tmp_path: Path) -> None:
    _race(str(tmp_path / "dataset"))


@pytest.mark.integration
def test_two_processes_commit_to_one_table_on_s3_and_lose_nothing(s3_env: str) -> None:
    _race(s3_env + "dataset")
    fs, root = url_to_fs(s3_env + "dataset/quarantine/_delta_log")
    commits = [p for p in fs.ls(root) if p.endswith(".json")]
    assert len(commits) == 2 * COMMITS + 1  # the create, and one version per commit: none overwritten


def _create_each(uris: list[str], barrier: Any, environ: dict[str, str]) -> None:
    import os

    os.environ.update(environ)
    for uri in uris:
        barrier.wait(timeout=60)  # both writers reach each create at the same moment
        delta.create(uri, TABLES["quarantine"])


def _race_creates(root: str, tables: int) -> None:
    """Two processes create the same `tables` tables at once: each table gets one version, one table id."""
    import os

    uris = [f"{root}table{n}" for n in range(tables)]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    environ = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    writers = [context.Process(target=_create_each, args=(uris, barrier, environ)) for _ in range(2)]
    try:
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(timeout=300)
            assert writer.exitcode == 0
    finally:
        for writer in writers:
            if writer.is_alive():
                writer.terminate()
    for uri in uris:
        fs, log = url_to_fs(uri + "/_delta_log")
        assert [p.rsplit("/", 1)[1] for p in fs.ls(log) if p.endswith(".json")] == ["00000000000000000000.json"]
        table = delta.open_table(uri)
        assert table is not None and table.version() == 0


def test_writers_racing_to_create_a_local_table_make_it_once(tmp_path: Path) -> None:
    # delta-rs retries a create that lost the race as a second CREATE TABLE version with a new table id; in
    # 20 races that happened several times before delta.create stopped the retry.
    _race_creates(f"{tmp_path}/", 20)


@pytest.mark.integration
def test_writers_racing_to_create_a_table_on_s3_make_it_once(s3_env: str) -> None:
    _race_creates(s3_env, 10)
