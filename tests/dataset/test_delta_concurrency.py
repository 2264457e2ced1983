"""Two processes committing to one Delta table at once lose nothing, on local disk and on a real S3 server.

Delta's log takes one file per version; a writer that finds its version taken re-reads and retries. On an
object store that needs a conditional write (put-if-absent): without it, the second writer would overwrite the
first's commit and its files would silently drop out of the table.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fsspec.core import url_to_fs

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
