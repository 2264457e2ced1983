"""The store's one row-group reader, its row count, and the pixel contract of images/ and volumes/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from radpipe.dataset.pixels import decode_pixels, decode_row, encode_pixels
from radpipe.dataset.schema import TABLES
from radpipe.dataset.store import DatasetStore
from tests.tables import commit_files


def _image_rows(uids: list[str]) -> pa.Table:
    rows = []
    for n, uid in enumerate(uids):
        rows.append(
            {"sop_instance_uid": uid, "study_instance_uid": f"s{n % 2}", "profile": "p"}
            | encode_pixels(np.full((2, 3), n, np.uint16))
        )
    return pa.Table.from_pylist(rows, schema=TABLES["images"])


@pytest.fixture
def store(tmp_path: Path) -> DatasetStore:
    folder = tmp_path / "dataset" / "images"
    folder.mkdir(parents=True)
    pq.write_table(_image_rows(["a", "b", "c"]), folder / "part-1.parquet", row_group_size=2)
    pq.write_table(_image_rows(["d", "e"]).drop_columns(["profile"]), folder / "part-2.parquet")  # an older file
    commit_files(folder, "part-1.parquet", "part-2.parquet")
    return DatasetStore(str(tmp_path / "dataset"))


def test_row_groups_come_one_at_a_time_in_file_order(store: DatasetStore) -> None:
    groups = list(store.iter_row_groups("images", ["sop_instance_uid", "profile"]))
    assert [g.name for g in groups] == ["part-1.parquet#0", "part-1.parquet#1", "part-2.parquet#0"]
    assert [g.rows.num_rows for g in groups] == [2, 1, 2]
    assert sum((g.rows["sop_instance_uid"].to_pylist() for g in groups), []) == ["a", "b", "c", "d", "e"]
    assert groups[-1].rows.column_names == ["sop_instance_uid"]  # the older file lacks `profile`
    assert store.count_rows("images") == 5


def test_where_keeps_only_the_wanted_rows(store: DatasetStore) -> None:
    groups = store.iter_row_groups(
        "images", ["sop_instance_uid", "pixels", "shape", "dtype"], where=("sop_instance_uid", ["b", "e"])
    )
    rows = [row for g in groups for row in g.rows.to_pylist()]
    assert [row["sop_instance_uid"] for row in rows] == ["b", "e"]
    assert [int(decode_row(row)[0, 0]) for row in rows] == [1, 1]


def test_a_missing_table_has_no_groups_and_no_rows(store: DatasetStore) -> None:
    assert list(store.iter_row_groups("volumes")) == []
    assert store.count_rows("volumes") == 0


@pytest.mark.parametrize("dtype", [">u2", "<u2", "|u1", ">f4", "<i2"])
def test_pixels_round_trip_exactly_and_are_stored_little_endian(dtype: str) -> None:
    array = (np.arange(24).reshape(2, 3, 4) * 7).astype(dtype)
    stored = encode_pixels(array)
    assert stored["shape"] == [2, 3, 4]
    assert stored["dtype"][0] in "<|"  # "<u2", "|u1": the same bytes on every machine
    restored = decode_pixels(stored["pixels"], stored["shape"], stored["dtype"])
    np.testing.assert_array_equal(restored, array)
    assert restored.dtype == np.dtype(array.dtype).newbyteorder("<")


@pytest.mark.parametrize("hashed_by", ["arrow", "python"])
def test_a_key_filter_keeps_matching_rows_and_skips_groups_without_any(
    store: DatasetStore, hashed_by: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from radpipe.dataset import store as store_module

    # Many values (a rerun's whole listing) are hashed once in Python instead of by Arrow for every row group.
    monkeypatch.setattr(store_module, "ARROW_LOOKUP_VALUES", 10_000 if hashed_by == "arrow" else 1)
    groups = list(store.iter_row_groups("images", ["sop_instance_uid"], where=("sop_instance_uid", {"b", "c", "x"})))
    assert [g.name for g in groups] == ["part-1.parquet#0", "part-1.parquet#1"]  # part-2 holds neither
    assert [g.rows["sop_instance_uid"].to_pylist() for g in groups] == [["b"], ["c"]]
    assert list(store.iter_row_groups("images", where=("sop_instance_uid", set()))) == []
