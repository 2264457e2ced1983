"""A derived table is brought up to date by rewriting only the files whose rows changed."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from radpipe.dataset.commit import replace_table, update_table
from radpipe.dataset.schema import STUDIES
from radpipe.dataset.store import DatasetStore


def _studies(rows: dict[str, int], record: str = "r1") -> pa.Table:
    table = pa.Table.from_pylist(
        [
            {"study_instance_uid": uid, "patient_id": f"p{n % 7}", "split": "train", "n_images": n, "n_volumes": 0}
            for uid, n in sorted(rows.items())
        ],
        schema=STUDIES,
    )
    return table.replace_schema_metadata({b"radpipe.inputs": record.encode()})


def _content(store: DatasetStore) -> list[dict]:
    return sorted(store.read_table("studies").to_pylist(), key=lambda r: r["study_instance_uid"])


def test_new_rows_are_a_new_file_and_changed_rows_rewrite_only_their_file(tmp_path: Path) -> None:
    store = DatasetStore(str(tmp_path / "dataset"))
    rows = {f"1.2.{n}": n for n in range(100)}
    replace_table(store, "studies", _studies(rows))
    (first,) = store.table_files("studies")

    rows |= {f"1.3.{n}": n for n in range(10)}
    update_table(store, "studies", _studies(rows), "study_instance_uid")
    files = store.table_files("studies")
    assert first in files and len(files) == 2  # the first file is untouched: its rows were not read again
    assert _content(store) == _content_of(rows)

    version = store.table_version("studies")
    update_table(store, "studies", _studies(rows), "study_instance_uid")  # the same rows, the same record
    assert store.table_version("studies") == version

    rows["1.2.5"] = 500  # a changed row: its file is rewritten, the other stays
    del rows["1.3.2"]  # a row gone: its file too
    update_table(store, "studies", _studies(rows), "study_instance_uid")
    assert first not in store.table_files("studies") and _content(store) == _content_of(rows)

    before = store.table_files("studies")
    update_table(store, "studies", _studies(rows, record="r2"), "study_instance_uid")  # only the record is new
    after = store.table_files("studies")
    assert len(after) == len(before) and len(set(after) - set(before)) == 1 and _content(store) == _content_of(rows)
    records = [(pq.read_schema(f).metadata or {}).get(b"radpipe.inputs") for f in after]
    assert records.count(b"r2") == 1  # the file written again carries the new record


def test_any_sequence_of_updates_holds_exactly_the_rows_asked_for(tmp_path: Path) -> None:
    rng = random.Random(17)
    store = DatasetStore(str(tmp_path / "dataset"))
    rows: dict[str, int] = {}
    for step in range(30):
        for _ in range(rng.randint(0, 20)):
            rows[f"1.{rng.randint(0, 60)}"] = rng.randint(0, 3)  # new or changed
        for uid in rng.sample(sorted(rows), k=min(len(rows), rng.randint(0, 3))):
            del rows[uid]
        update_table(store, "studies", _studies(rows, record=f"r{step % 3}"), "study_instance_uid")
        assert _content(store) == _content_of(rows), step


def _content_of(rows: dict[str, int]) -> list[dict]:
    return _studies(rows).to_pylist()


def test_an_upsert_rewrites_a_file_whole_whichever_of_its_row_groups_changed(tmp_path: Path) -> None:
    from radpipe.dataset.commit import upsert_rows
    from tests.tables import commit_files

    store = DatasetStore(str(tmp_path / "dataset"))
    folder = tmp_path / "dataset" / "studies"
    folder.mkdir(parents=True)
    rows = {"a": 1, "b": 2, "c": 3, "d": 4}
    pq.write_table(_studies(rows), folder / "part-0.parquet", row_group_size=2)  # row groups [a, b], [c, d]
    commit_files(folder, "part-0.parquet")

    rows["c"] = 30  # c changes; a is asked for unchanged, in the other row group of the same file
    upsert_rows(store, "studies", _studies({"a": 1, "c": 30}), "study_instance_uid", {"a", "c"})
    assert _content(store) == _content_of(rows)

    del rows["d"]  # a key asked for that the rows lack is deleted
    upsert_rows(store, "studies", _studies({}), "study_instance_uid", {"d"})
    assert _content(store) == _content_of(rows)
