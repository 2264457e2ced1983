"""The training view: train split only, report text attached, pruned images and report-less studies left out."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from radpipe.dataset.commit import replace_table
from radpipe.dataset.store import DatasetStore
from radpipe.errors import SourceError
from radpipe.model.config import AugmentConfig
from radpipe.quality.status import NotValidated, require_validated
from radpipe.reports.sections import report_text
from radpipe.train.data import prepare_batch, training_view


def test_view_pairs_each_image_with_its_own_study_report(trainable: tuple[Path, Path]) -> None:
    store = DatasetStore(str(trainable[1]))
    view = training_view(store)
    studies = {r["study_instance_uid"]: r for r in store.read_table("studies").to_pylist()}
    reports = {r["report_id"]: r for r in store.read_table("reports").to_pylist()}
    images = {r["sop_instance_uid"]: r["study_instance_uid"] for r in store.read_table("images").to_pylist()}
    assert view.profile == "cxr-224"
    assert view.count("train") > 0
    for split, texts in view.texts.items():
        for uid, text in texts.items():
            study = studies[images[uid]]
            assert study["split"] == split
            report = reports[study["report_id"]]
            assert text == report_text(report["findings"], report["impression"], report["text"])


def test_pruned_images_never_reach_training(trainable: tuple[Path, Path], tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    shutil.copytree(trainable[1], dataset)
    store = DatasetStore(str(dataset))
    before = training_view(store).texts["train"]
    victim = sorted(before)[0]
    curation = store.read_table("curation")
    prune = pc.or_(pc.fill_null(curation["prune"], False), pc.equal(curation["sop_instance_uid"], victim))
    replace_table(store, "curation", curation.set_column(curation.schema.get_field_index("prune"), "prune", prune))
    after = training_view(store).texts["train"]
    assert victim not in after and len(after) == len(before) - 1
    # ... and the changed dataset is a new version that must be validated again before training.
    with pytest.raises(NotValidated, match="changed since its last validation"):
        require_validated(store)


def test_uncurated_dataset_is_refused_with_what_to_run(trainable: tuple[Path, Path], tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    shutil.copytree(trainable[1], dataset, ignore=shutil.ignore_patterns("curation"))
    with pytest.raises(SourceError, match="radpipe curate"):
        training_view(DatasetStore(str(dataset)))


def test_unvalidated_dataset_is_refused(trainable: tuple[Path, Path], tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    shutil.copytree(trainable[1], dataset, ignore=shutil.ignore_patterns("_quality"))
    with pytest.raises(NotValidated, match="radpipe validate"):
        require_validated(DatasetStore(str(dataset)))


def test_report_text_keeps_what_the_image_shows() -> None:
    whole = "INDICATION: cough. FINDINGS: ..."
    assert report_text("Small effusion.", "Effusion.", whole) == "Small effusion. Effusion."
    assert report_text(None, "  ", "Whole report.") == "Whole report."


def test_prepare_batch_decodes_resizes_and_tokenizes() -> None:
    image = (np.arange(224 * 224) % 256).astype(np.uint8).reshape(224, 224)
    batch = {
        "sop_instance_uid": np.array(["a", "b", "c"], dtype=object),
        "pixels": np.array([image.tobytes()] * 3, dtype=object),
        "shape": np.array([[224, 224]] * 3),
        "dtype": np.array(["uint8"] * 3, dtype=object),
    }

    def tokenize(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return np.array([[len(t)] for t in texts], np.int32), np.ones((len(texts), 1), np.int32)

    out = prepare_batch(batch, {"a": "one", "c": "three"}, tokenize, 64)
    assert out["image"].shape == (2, 1, 64, 64) and out["image"].dtype == np.float32
    assert 0.0 <= out["image"].min() and out["image"].max() <= 1.0
    assert out["ids"][:, 0].tolist() == [3, 5]  # rows without a report text are dropped, order kept


def test_augmentation_is_light_keeps_range_and_is_reproducible_per_seed_rank_and_step() -> None:
    import torch

    from radpipe.train.augment import augment_images, step_generator

    images = torch.zeros((8, 1, 64, 64))
    images[:, :, 16:48, 8:24] = 1.0  # a bright block on the left stays on the left: no flips
    out = augment_images(images, AugmentConfig(), step_generator(0, 0, 5))
    assert out.shape == images.shape and out.dtype == torch.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert (out[..., :32].sum(dim=(1, 2, 3)) > 4 * out[..., 32:].sum(dim=(1, 2, 3))).all()
    assert not torch.equal(out[0], out[1])  # each image its own transform
    again = augment_images(images, AugmentConfig(), step_generator(0, 0, 5))
    assert torch.equal(out, again)  # same seed, rank and step: the same batch
    assert not torch.equal(out, augment_images(images, AugmentConfig(), step_generator(0, 1, 5)))  # other rank
    assert not torch.equal(out, augment_images(images, AugmentConfig(), step_generator(0, 0, 6)))  # next step


def test_table_is_read_as_plain_parquet(trainable: tuple[Path, Path]) -> None:
    # Ray Data reads images/ directly: the pixel payload and shape must restore with numpy alone.
    row = DatasetStore(str(trainable[1])).read_table("images").slice(0, 1).to_pylist()[0]
    assert np.frombuffer(row["pixels"], row["dtype"]).reshape(row["shape"]).shape == (224, 224)


def test_ray_data_reads_the_tables_as_delta_tables_at_any_version(trainable: tuple[Path, Path], local_ray) -> None:
    import ray
    from deltalake import DeltaTable

    dataset = trainable[1]
    for table in ("images", "studies", "curation"):
        assert ray.data.read_delta(str(dataset / table)).count() == DeltaTable(str(dataset / table)).count() > 0
    first = ray.data.read_delta(str(dataset / "studies"), version=1).to_arrow_refs()
    assert sum(ray.get(ref).num_rows for ref in first) == DeltaTable(str(dataset / "studies"), version=1).count()


def test_ray_data_tasks_import_no_model_code() -> None:
    """Ray Data ships the prepare functions by reference: each task process imports their module. MONAI's import
    alone took 7 s there, once per task process and run, before the first batch could be prepared."""
    import subprocess
    import sys

    from radpipe.train import ray as train_ray
    from radpipe.train.data import prepared_images, prepared_volumes

    assert {prepared_images.__module__, prepared_volumes.__module__} == {"radpipe.train.data"}
    assert (train_ray.prepared_images, train_ray.prepared_volumes) == (prepared_images, prepared_volumes)
    probe = "import sys, radpipe.train.data; print(sorted(m for m in {} if m in sys.modules))".format(
        ("monai", "radpipe.model.image", "radpipe.train.loop", "radpipe.train.ray", "ray.train")
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_a_split_is_read_by_one_parquet_read_with_its_key_filter_and_columns_inside(
    trainable: tuple[Path, Path], local_ray
) -> None:
    """Other splits' rows and unused columns never leave the read; and the read is Ray Data's plain Parquet
    one, not the "V2" one that started a footer-reader actor process (~3 s) at every execution."""
    import ray.data

    from radpipe.train.ray import IMAGE_COLUMNS, _split_rows

    store = DatasetStore(str(trainable[1]))
    train = training_view(store).texts["train"]
    assert 0 < len(train) < store.count_rows("images")  # the filter has rows to leave out
    context = ray.data.DataContext.get_current()
    context.use_datasource_v2 = True  # Ray's default
    rows = _split_rows(store, "images", IMAGE_COLUMNS, train).materialize()
    assert context.use_datasource_v2  # the process's setting is put back: its other reads are not changed
    assert sorted(rows.unique("sop_instance_uid")) == sorted(train)
    assert rows.columns() == IMAGE_COLUMNS
    operators = [line.split(":")[0] for line in rows.stats().splitlines() if line.startswith("Operator")]
    assert operators == ["Operator 1 ReadParquet"]  # no Filter or Project operator after it, no ListFiles
