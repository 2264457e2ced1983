"""The evaluation view of a dataset: one split's images with their report text and CheXpert-style labels.

Unlike the training view it keeps pruned images: pruning decides what a model learns from, never what it
is measured on, so a full and a pruned model are scored on the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from radpipe.dataset.pixels import decode_row
from radpipe.dataset.store import DatasetStore
from radpipe.errors import SourceError
from radpipe.model.embedder import CHUNK, VOLUME_CHUNK, Embedder
from radpipe.model.exam import body_part_words, exam_line, modality_kind
from radpipe.model.report_text import Sections, reference_sections
from radpipe.reports.label_rules import LABELS
from radpipe.reports.sections import report_text
from radpipe.train.data import exam_columns

if TYPE_CHECKING:
    from radpipe.model.embed_dataset import EmbeddingParts

Progress = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True)
class LabelledSplit:
    """Row i of every field describes one image; sorted by sop_instance_uid, so runs are reproducible."""

    split: str
    uids: list[str]
    studies: list[str]
    texts: list[str]
    labels: dict[str, np.ndarray]  # label -> per image 1 (present), 0 (absent), nan (uncertain or unmentioned)
    volumes: bool = False  # rows are CT/MR series (volumes/), not images
    # Per row, from the headers: the modality kind (radpipe.model.exam.modality_kind) and body part in words.
    kinds: list[str] = field(default_factory=list)
    body_parts: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.uids)

    def subset(self, rows: np.ndarray | list[int]) -> LabelledSplit:
        index = np.asarray(rows, dtype=np.int64)
        return LabelledSplit(
            self.split,
            [self.uids[i] for i in index],
            [self.studies[i] for i in index],
            [self.texts[i] for i in index],
            {name: values[index] for name, values in self.labels.items()},
            self.volumes,
            [self.kinds[i] for i in index] if self.kinds else [],
            [self.body_parts[i] for i in index] if self.body_parts else [],
        )

    def exam_texts(self) -> list[str]:
        """Each row's text after its examination line: what a model of radiographs and volumes read in training."""
        return [f"{exam_line(k, b)} {t}" for k, b, t in zip(self.kinds, self.body_parts, self.texts, strict=True)]

    def first_row_per_study(self) -> list[int]:
        """One image per report: retrieval pairs an image with its report, and a study's views share one."""
        seen: set[str] = set()
        rows = []
        for i, study in enumerate(self.studies):
            if study not in seen:
                seen.add(study)
                rows.append(i)
        return rows


def _label_value(value: int | None) -> float:
    return float(value) if value in (0, 1) else float("nan")


def labelled_split(store: DatasetStore, split: str, volumes: bool = False, exams: bool = False) -> LabelledSplit:
    """Images (or assembled CT/MR volumes, keyed by series) of `split` whose study has a report, with the
    report's findings+impression text and labels; with `exams`, each row's modality and body part too."""
    table, key = ("volumes", "series_instance_uid") if volumes else ("images", "sop_instance_uid")
    if not store.table_files(table):
        raise SourceError(f"the dataset has no {table}/: {store.uri}")
    if not store.table_files("studies"):
        raise SourceError("the dataset has no splits yet: run `radpipe curate DATASET` first")
    if volumes:
        items = store.read_table("volumes", [key, "study_instance_uid", "issues"])
        items = items.filter(pc.equal(pc.list_value_length(items["issues"]), 0)).drop_columns(["issues"])
    else:
        items = store.read_table("images", [key, "study_instance_uid"])
    if exams:  # each row's modality and body part, from its instances' headers
        items = items.join(exam_columns(store, key), key)
    else:
        items = items.append_column("modality", pa.nulls(len(items), pa.string()))
        items = items.append_column("body_part", pa.nulls(len(items), pa.string()))
    images = items.rename_columns(["sop_instance_uid", "study_instance_uid", "modality", "body_part"])
    studies = store.read_table("studies", ["study_instance_uid", "split", "report_id"])
    studies = studies.filter(pc.equal(studies["split"], split))
    # Arrow joins no struct column: the labels travel as flat "labels.<name>" columns.
    reports = store.read_table("reports", ["report_id", "findings", "impression", "text", "labels"]).flatten()
    joined = (
        images.join(studies, "study_instance_uid", join_type="inner")
        .join(reports, "report_id", join_type="inner")
        .sort_by("sop_instance_uid")
    )
    uids, study_ids, texts, kinds, parts = [], [], [], [], []
    labels: dict[str, list[float]] = {name: [] for name in LABELS}
    for row in joined.to_pylist():
        body = report_text(row["findings"], row["impression"], row["text"])
        if not body:
            continue
        uids.append(row["sop_instance_uid"])
        study_ids.append(row["study_instance_uid"])
        texts.append(body)
        kinds.append(modality_kind(row["modality"]))
        parts.append(body_part_words(row["body_part"]))
        for name in LABELS:
            labels[name].append(_label_value(row[f"labels.{name}"]))
    values = {k: np.asarray(v, np.float64) for k, v in labels.items()}
    return LabelledSplit(split, uids, study_ids, texts, values, volumes, kinds if exams else [], parts if exams else [])


def iter_volumes(store: DatasetStore, uids: list[str]) -> Iterator[tuple[str, np.ndarray, str]]:
    """(series uid, stored volume, its profile) for the wanted series, one row group at a time."""
    columns = ["series_instance_uid", "pixels", "shape", "dtype", "profile"]
    for group in store.iter_row_groups("volumes", columns, where=("series_instance_uid", uids)):
        for row in group.rows.to_pylist():
            yield row["series_instance_uid"], decode_row(row), row["profile"]


def iter_pixels(store: DatasetStore, uids: list[str]) -> Iterator[tuple[str, np.ndarray]]:
    """(uid, stored image) for the wanted images, one row group at a time (bounded memory), in file order."""
    columns = ["sop_instance_uid", "pixels", "shape", "dtype"]
    for group in store.iter_row_groups("images", columns, where=("sop_instance_uid", uids)):
        for row in group.rows.to_pylist():
            yield row["sop_instance_uid"], decode_row(row)


def reference_sections_of(store: DatasetStore, studies: list[str], reasoning: bool = True) -> list[Sections]:
    """Each study's report as sections (with its reasoning trace), in the order of `studies`."""
    wanted = pa.array(sorted(set(studies)), pa.string())
    linked = store.read_table("studies", ["study_instance_uid", "report_id"])
    linked = linked.filter(pc.is_in(linked["study_instance_uid"], value_set=wanted))
    reports = store.read_table("reports", ["report_id", "findings", "impression", "text", "rationale"])
    by_study = {
        row["study_instance_uid"]: reference_sections(
            row["findings"], row["impression"], row["text"], row["rationale"], reasoning
        )
        for row in linked.join(reports, "report_id", join_type="inner").to_pylist()
    }
    return [by_study.get(study, Sections()) for study in studies]


def model_inputs_of(
    store: DatasetStore, uids: list[str], embedder: Embedder, volumes: bool
) -> Iterator[tuple[str, np.ndarray]]:
    """(uid, model input) for the wanted images, or series (`volumes`), in file order."""
    if volumes:
        for uid, volume, profile in iter_volumes(store, uids):
            yield uid, embedder.volume_input(volume, profile)
    else:
        for uid, pixels in iter_pixels(store, uids):
            yield uid, embedder.image_input(pixels)


def embed_images_of(
    store: DatasetStore, rows: LabelledSplit, embedder: Embedder, on_progress: Progress | None = None
) -> np.ndarray:
    """Unit-norm image embeddings aligned with `rows.uids`, embedded a chunk at a time."""
    position = {uid: i for i, uid in enumerate(rows.uids)}
    out = np.zeros((len(rows), embedder.spec.model.embed_dim), dtype=np.float32)
    filled = np.zeros(len(rows), dtype=bool)
    chunk_rows: list[int] = []
    chunk: list[np.ndarray] = []

    def flush() -> None:
        if chunk:
            out[chunk_rows] = embedder.embed_images(chunk)
            filled[chunk_rows] = True
            chunk_rows.clear()
            chunk.clear()
            if on_progress is not None:
                on_progress(int(filled.sum()), len(rows))

    for uid, model_input in model_inputs_of(store, rows.uids, embedder, rows.volumes):
        chunk_rows.append(position[uid])
        chunk.append(model_input)
        if len(chunk) >= (VOLUME_CHUNK if rows.volumes else CHUNK):
            flush()
    flush()
    if not filled.all():
        raise SourceError(f"{int((~filled).sum())} image(s) of the {rows.split} split are missing from images/")
    return out


def embed_splits(
    store: DatasetStore, splits: Sequence[LabelledSplit], embedder: Embedder, pool: EmbeddingParts | None = None
) -> list[np.ndarray]:
    """Each split's unit-norm embeddings, aligned with its uids; with `pool`, the images of every split in one
    pass through the pool's actors (one start-up). Series (volumes/) are embedded here either way."""
    if pool is None or any(rows.volumes for rows in splits):
        return [embed_images_of(store, rows, embedder) for rows in splits]
    wanted = sorted({uid for rows in splits for uid in rows.uids})
    position = {uid: i for i, uid in enumerate(wanted)}
    out = np.zeros((len(wanted), embedder.spec.model.embed_dim), dtype=np.float32)
    filled = np.zeros(len(wanted), dtype=bool)
    for part in pool(wanted):
        at = [position[uid] for uid in part.column("sop_instance_uid").to_pylist()]
        out[at] = np.stack(part.column("embedding").to_numpy(zero_copy_only=False))
        filled[at] = True
    if not filled.all():
        raise SourceError(f"{int((~filled).sum())} image(s) to evaluate on are missing from images/")
    return [out[[position[uid] for uid in rows.uids]] for rows in splits]
