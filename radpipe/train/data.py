"""The training view of a dataset: which images pair with which report text, and how a batch is prepared.

pyarrow, numpy and the tokenizers: Ray Data calls `prepared_images` / `prepared_volumes` in its workers
(radpipe/train/ray.py), the plain PyTorch baseline and the served model call the same functions. Ray Data's task
processes import this module to run them, so it imports no network or train-loop code (MONAI's import, when the
encoders came from it, took 7-9 s in each task process).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from radpipe.dataset.pixels import decode_pixels
from radpipe.dataset.store import DatasetStore
from radpipe.errors import SourceError
from radpipe.model.exam import other_modality, with_exam
from radpipe.model.report_text import reference_sections, target_text
from radpipe.preprocess.profile import to_model_input
from radpipe.preprocess.volume import get_volume_profile, to_model_volume
from radpipe.reports.sections import report_text


@dataclass(frozen=True)
class TrainingView:
    """Per split: the image ids to read and the report text each pairs with."""

    profile: str
    texts: dict[str, dict[str, str]]  # split -> sop_instance_uid -> report text
    unsplit: int = 0  # paired images whose study has no split yet (ingested after the last curate)
    # split -> key -> a report decoder's target (sections and, where asked, reasoning; radpipe.model.report_text)
    targets: dict[str, dict[str, str]] = field(default_factory=dict)
    # A model of radiographs and volumes: which keys are volumes (series UIDs); the others are images.
    volume_keys: frozenset[str] = frozenset()
    # With examination lines: split -> key -> the text under another modality's examination line (a hard negative).
    swaps: dict[str, dict[str, str]] = field(default_factory=dict)

    def count(self, split: str) -> int:
        return len(self.texts.get(split, {}))

    def modality_texts(self, split: str, volumes: bool) -> dict[str, str]:
        """One split's texts of the images only, or of the volumes only."""
        return {k: t for k, t in self.texts.get(split, {}).items() if (k in self.volume_keys) == volumes}

    def modality_targets(self, split: str, volumes: bool) -> dict[str, str]:
        return {k: t for k, t in self.targets.get(split, {}).items() if (k in self.volume_keys) == volumes}


def training_view(store: DatasetStore, reasoning: bool = True, exam: bool = False) -> TrainingView:
    """Join images -> studies (split) -> reports (text), dropping pruned images and studies without a report.

    `exam`: each text starts with its examination line (radpipe.model.exam), as a model of radiographs and
    volumes reads it."""
    if not store.table_files("images"):
        raise SourceError(f"not an ingested radpipe dataset (no images/): {store.uri}")
    if not store.table_files("curation") or not store.table_files("studies"):
        raise SourceError("the dataset has no splits or curation flags yet: run `radpipe curate DATASET` first")
    images = store.read_table("images", ["sop_instance_uid", "study_instance_uid", "profile"])
    profiles = pc.unique(images["profile"]).to_pylist()
    if len(profiles) != 1:
        raise SourceError(f"images were ingested with several profiles ({', '.join(map(str, profiles))}); one expected")
    curation = store.read_table("curation", ["sop_instance_uid", "prune"])
    pruned = pc.filter(curation["sop_instance_uid"], pc.fill_null(curation["prune"], False))
    images = images.filter(pc.invert(pc.is_in(images["sop_instance_uid"], value_set=pruned)))
    if exam:
        images = images.join(exam_columns(store, "sop_instance_uid"), "sop_instance_uid")
    items = images.drop_columns(["profile"])
    texts, targets, unsplit, swaps = _paired_texts(store, items, "sop_instance_uid", reasoning)
    return TrainingView(profile=str(profiles[0]), texts=texts, unsplit=unsplit, targets=targets, swaps=swaps)


def volume_view(store: DatasetStore, reasoning: bool = True, exam: bool = False) -> TrainingView:
    """The 3D counterpart: assembled volumes (no geometry issue) -> studies -> reports, keyed by series UID.

    `profile` lists the volume profiles present, comma-separated (CT and MR each have their own).
    """
    if not store.table_files("volumes"):
        raise SourceError(f"the dataset has no volumes/ (no CT/MR series ingested): {store.uri}")
    if not store.table_files("studies"):
        raise SourceError("the dataset has no splits yet: run `radpipe curate DATASET` first")
    columns = ["series_instance_uid", "study_instance_uid", "profile", "issues", "modality"]
    volumes = store.read_table("volumes", columns)
    volumes = volumes.filter(pc.equal(pc.list_value_length(volumes["issues"]), 0))  # held-back series never
    profiles = sorted(str(p) for p in pc.unique(volumes["profile"]).to_pylist())
    items = volumes.drop_columns(["issues", "profile"])
    if exam:
        body_parts = exam_columns(store, "series_instance_uid").drop_columns(["modality"])
        items = items.join(body_parts, "series_instance_uid")
    else:
        items = items.drop_columns(["modality"])
    texts, targets, unsplit, swaps = _paired_texts(store, items, "series_instance_uid", reasoning)
    return TrainingView(profile=",".join(profiles), texts=texts, unsplit=unsplit, targets=targets, swaps=swaps)


def mixed_view(store: DatasetStore, reasoning: bool = True) -> TrainingView:
    """Images and assembled volumes in one view, every text after its examination line: what a model of
    radiographs and volumes trains on. Its profile is "<image profile>+<volume profiles>"."""
    images = training_view(store, reasoning, exam=True)
    volumes = volume_view(store, reasoning, exam=True)
    splits = set(images.texts) | set(volumes.texts)
    return TrainingView(
        profile=f"{images.profile}+{volumes.profile}",
        texts={s: images.texts.get(s, {}) | volumes.texts.get(s, {}) for s in splits},
        unsplit=images.unsplit + volumes.unsplit,
        targets={s: images.targets.get(s, {}) | volumes.targets.get(s, {}) for s in splits},
        swaps={s: images.swaps.get(s, {}) | volumes.swaps.get(s, {}) for s in splits},
        volume_keys=frozenset(k for split in volumes.texts.values() for k in split),
    )


def exam_columns(store: DatasetStore, key: str) -> pa.Table:
    """key (an image's or a series' UID) -> modality, body_part, from the instances' headers (one row per key)."""
    instances = store.read_table("instances", [key, "modality", "body_part"])
    return (
        instances.group_by(key)
        .aggregate([("modality", "min"), ("body_part", "min")])
        .rename_columns([key, "modality", "body_part"])
    )


Paired = dict[str, dict[str, str]]


def _paired_texts(
    store: DatasetStore, items: pa.Table, key: str, reasoning: bool
) -> tuple[Paired, Paired, int, Paired]:
    """split -> item key -> report text (what the text encoder reads) and decoder target, how many paired items
    have no split yet, and (items with their examination columns) split -> key -> the text under another
    modality's examination line."""
    studies = store.read_table("studies", ["study_instance_uid", "split", "report_id"])
    reports = store.read_table("reports", ["report_id", "findings", "impression", "text", "rationale"])
    joined = items.join(studies, "study_instance_uid").join(reports, "report_id")
    texts: Paired = {}
    targets: Paired = {}
    swaps: Paired = {}
    unsplit = 0
    exam = "body_part" in joined.column_names
    for row in joined.to_pylist():
        body = report_text(row["findings"], row["impression"], row["text"])
        if body and exam and row["split"]:
            swapped = with_exam(body, other_modality(row["modality"], row[key]), row["body_part"])
            swaps.setdefault(row["split"], {})[row[key]] = swapped
        if body and exam:
            body = with_exam(body, row["modality"], row["body_part"])
        if body and row["split"]:
            texts.setdefault(row["split"], {})[row[key]] = body
            sections = reference_sections(row["findings"], row["impression"], row["text"], row["rationale"], reasoning)
            targets.setdefault(row["split"], {})[row[key]] = target_text(sections)
        elif body:
            unsplit += 1
    return texts, targets, unsplit, swaps


@dataclass(frozen=True)
class Targets:
    """A report decoder's targets by key and their tokenizer (radpipe.model.report_text.ReportTokenizer)."""

    by_key: dict[str, str]
    tokenize: Any

    def add_to(self, prepared: dict[str, np.ndarray], keys: list[str]) -> dict[str, np.ndarray]:
        prepared["target"] = self.tokenize([self.by_key[k] for k in keys])
        return prepared


@dataclass(frozen=True)
class ExamSwaps:
    """Texts under another modality's examination line by key, and the text tokenizer: hard negatives that
    teach a model of radiographs and volumes that the examination words must match the image."""

    by_key: dict[str, str]
    tokenize: Any

    def add_to(self, prepared: dict[str, np.ndarray], keys: list[str]) -> dict[str, np.ndarray]:
        prepared["swap_ids"], prepared["swap_mask"] = self.tokenize([self.by_key[k] for k in keys])
        return prepared


def prepare_batch(
    batch: dict[str, Any],
    texts: dict[str, str],
    tokenize: Any,
    input_size: int,
    targets: Targets | None = None,
    swaps: ExamSwaps | None = None,
) -> dict[str, np.ndarray]:
    """Rows of images/ (pixels, shape, dtype) to model inputs; rows not in `texts` are dropped. With `targets`
    (a report decoder is trained), each row also gets its target ids.

    No augmentation here: the train loop augments on its device (radpipe.train.augment), so prepared images can
    be kept and reused across epochs.
    """
    keep = [i for i, uid in enumerate(batch["sop_instance_uid"]) if uid in texts]
    images = np.empty((len(keep), 1, input_size, input_size), dtype=np.float32)
    for out, i in enumerate(keep):
        images[out, 0] = to_model_input(
            decode_pixels(batch["pixels"][i], batch["shape"][i], batch["dtype"][i]), input_size
        )
    keys = [batch["sop_instance_uid"][i] for i in keep]
    ids, mask = tokenize([texts[k] for k in keys])
    return _with_extras({"image": images, "ids": ids, "mask": mask}, keys, targets, swaps)


def prepare_volume_batch(
    batch: dict[str, Any],
    texts: dict[str, str],
    tokenize: Any,
    targets: Targets | None = None,
    swaps: ExamSwaps | None = None,
) -> dict[str, np.ndarray]:
    """Rows of volumes/ (pixels, shape, dtype, profile) to model inputs [B, 3, D, H, W]; others dropped."""
    keep = [i for i, uid in enumerate(batch["series_instance_uid"]) if uid in texts]
    volumes = []
    for i in keep:
        stored = decode_pixels(batch["pixels"][i], batch["shape"][i], batch["dtype"][i])
        volumes.append(to_model_volume(stored, get_volume_profile(str(batch["profile"][i]))))
    keys = [batch["series_instance_uid"][i] for i in keep]
    ids, mask = tokenize([texts[k] for k in keys])
    images = np.stack(volumes) if volumes else np.empty((0, 3, 1, 1, 1), dtype=np.float32)
    return _with_extras({"image": images, "ids": ids, "mask": mask}, keys, targets, swaps)


def prepared_images(batch: dict[str, Any], **kwargs: Any) -> Iterator[dict[str, np.ndarray]]:
    """`prepare_batch` for Ray Data's `map_batches`: a block holding only other splits' rows prepares to zero
    rows, and yielding nothing keeps the stream's tensor columns typed (an empty 4-D column cannot become an
    Arrow tensor and is pickled instead)."""
    prepared = prepare_batch(batch, **kwargs)
    if len(prepared["image"]):
        yield prepared


def prepared_volumes(batch: dict[str, Any], **kwargs: Any) -> Iterator[dict[str, np.ndarray]]:
    """`prepare_volume_batch` for Ray Data's `map_batches` (see `prepared_images`)."""
    prepared = prepare_volume_batch(batch, **kwargs)
    if len(prepared["image"]):
        yield prepared


def _with_extras(
    prepared: dict[str, np.ndarray], keys: list[str], targets: Targets | None, swaps: ExamSwaps | None
) -> dict[str, np.ndarray]:
    for extra in (targets, swaps):
        if extra is not None:
            prepared = extra.add_to(prepared, keys)
    return prepared


def read_split_table(store: DatasetStore, view: TrainingView, split: str) -> pa.Table:
    """All image rows of one split, in memory: for the plain-PyTorch baseline and small evaluations."""
    wanted = pa.array(list(view.texts.get(split, {})), pa.string())
    images = store.read_table("images", ["sop_instance_uid", "pixels", "shape", "dtype"])
    return images.filter(pc.is_in(images["sop_instance_uid"], value_set=wanted))
