"""Read a table batch by batch (one Parquet row group at a time) as pandas, with derived columns.

Memory stays bounded by one row group whatever the dataset's size; pixel payloads are reduced to
their length before anything is converted to pandas.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from radpipe.dataset.store import DatasetStore

VALIDATED_TABLES = ("instances", "images", "volumes", "reports", "studies")


@dataclass(frozen=True)
class Batch:
    table: str
    name: str  # file and row group, for the report ("part-...parquet#0")
    frame: pd.DataFrame


def _derive(table: str, data: pa.Table) -> pd.DataFrame:
    if table in ("images", "volumes"):
        lengths = pc.binary_length(data.column("pixels"))
        data = data.drop_columns(["pixels"]).append_column("pixels_length", lengths)
    frame = data.to_pandas()
    if table == "instances":
        spacing = frame["pixel_spacing"].map(lambda v: list(v) if v is not None and len(v) == 2 else [None, None])
        frame["spacing_row"] = spacing.map(lambda v: v[0]).astype("float64")
        frame["spacing_col"] = spacing.map(lambda v: v[1]).astype("float64")
        frame["study_date"] = pd.to_numeric(frame["study_date"], errors="coerce").astype("Int64")
        frame = frame.drop(columns=["pixel_spacing"])
    elif table == "images":
        shapes = frame["shape"].map(lambda v: list(v) if v is not None else [])
        frame["shape_h"] = shapes.map(lambda v: v[0] if len(v) == 2 else None).astype("Int64")
        frame["shape_w"] = shapes.map(lambda v: v[1] if len(v) == 2 else None).astype("Int64")
        itemsize = frame["dtype"].map(lambda d: np.dtype(d).itemsize if isinstance(d, str) else 0)
        frame["pixels_expected"] = (frame["shape_h"].fillna(0) * frame["shape_w"].fillna(0) * itemsize).astype("int64")
        frame["pixels_length"] = frame["pixels_length"].astype("Int64")
        frame = frame.drop(columns=["shape"])
    elif table == "volumes":
        frame = _derive_volumes(frame)
    elif table == "reports":
        has = frame["findings"].fillna("").str.strip().ne("") | frame["impression"].fillna("").str.strip().ne("")
        frame["has_sections"] = has
        from radpipe.reports.labeler import LABELLED_LANGUAGES

        # Datasets from before languages were detected were labelled in English.
        language = frame["language"] if "language" in frame else pd.Series(["en"] * len(frame), index=frame.index)
        frame["labelled_language"] = language.fillna("en").isin(LABELLED_LANGUAGES)
        frame = frame.drop(columns=["labels"])
    return frame


def _derive_volumes(frame: pd.DataFrame) -> pd.DataFrame:
    """Per series: is it assembled exactly when its geometry had no issue, at the profile's size and spacing?"""
    from radpipe.preprocess.volume import VOLUME_PROFILES

    def check(row: pd.Series) -> tuple[bool, bool, bool, bool]:
        assembled = row["pixels_length"] is not None and not pd.isna(row["pixels_length"])
        clean = row["issues"] is None or len(row["issues"]) == 0
        if not assembled:
            return (not clean), True, True, True
        profile = VOLUME_PROFILES.get(row["profile"])
        shape = [int(v) for v in row["shape"]] if row["shape"] is not None else []
        spacing = [float(v) for v in row["spacing"]] if row["spacing"] is not None else []
        shape_ok = profile is not None and shape == list(profile.size)
        spacing_ok = profile is not None and np.allclose(spacing, profile.spacing) if spacing else False
        expected = int(np.prod(shape)) * np.dtype(row["dtype"]).itemsize if shape and row["dtype"] else -1
        return clean, shape_ok, bool(spacing_ok), int(row["pixels_length"]) == expected

    checks = frame.apply(check, axis=1, result_type="expand") if len(frame) else pd.DataFrame(columns=range(4))
    frame["pixels_iff_no_issues"], frame["shape_ok"], frame["spacing_ok"], frame["bytes_ok"] = (
        checks[0].astype(bool),
        checks[1].astype(bool),
        checks[2].astype(bool),
        checks[3].astype(bool),
    )
    return frame.drop(columns=["shape", "spacing", "source_spacing", "issues", "affine"], errors="ignore")


def iter_batches(store: DatasetStore, tables: tuple[str, ...] = VALIDATED_TABLES) -> Iterator[Batch]:
    for table in tables:
        for group in store.iter_row_groups(table):
            yield Batch(table, group.name, _derive(table, group.rows))
