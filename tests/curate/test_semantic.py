"""Semantic pruning (SemDeDup): one image kept per group of near-identical embeddings, train split only."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from radpipe.commands import curate_dataset
from radpipe.curate.semantic import SemanticRule, semantic_duplicates
from radpipe.dataset.commit import replace_table
from radpipe.dataset.schema import EMBEDDINGS
from radpipe.dataset.store import DatasetStore
from radpipe.errors import ConfigError, SourceError
from radpipe.train.data import training_view
from tests.tables import read_delta

MODEL = "models:/radpipe-foundation/3"


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def near_copies(base: np.ndarray, copies: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    return unit(base + rng.normal(0, noise, (copies, base.size)))


def grouped(groups: int, size: int, singles: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """`groups` groups of `size` near-identical vectors (cosine > 0.99), then `singles` unrelated ones."""
    rng = np.random.default_rng(seed)
    rows = [near_copies(rng.normal(size=64), size, 0.01, rng) for _ in range(groups)]
    rows.append(unit(rng.normal(size=(singles, 64))))
    uids = [f"g{g:02d}-{i}" for g in range(groups) for i in range(size)] + [f"s{i:02d}" for i in range(singles)]
    return uids, np.concatenate(rows)


def test_each_group_of_near_copies_keeps_exactly_one() -> None:
    uids, vectors = grouped(groups=10, size=3, singles=20)
    removed = semantic_duplicates(uids, vectors, threshold=0.95)
    assert len(removed) == 10 * 2
    for group in range(10):
        members = {u for u in uids if u.startswith(f"g{group:02d}-")}
        kept = members - set(removed)
        assert len(kept) == 1
        assert all(removed[u][0] in kept and removed[u][1] >= 0.95 for u in members - kept)
    assert not any(u.startswith("s") for u in removed)


def test_kept_items_are_never_duplicates_of_each_other() -> None:
    # A dense cloud with chains (a ~ b ~ c, a and c apart): greedy against kept items only.
    rng = np.random.default_rng(1)
    vectors = unit(rng.normal(size=4) + rng.normal(0, 0.4, (150, 4)))
    uids = [f"u{i:03d}" for i in range(150)]
    removed = semantic_duplicates(uids, vectors, threshold=0.9, clusters=1)
    kept = [i for i, u in enumerate(uids) if u not in removed]
    similarity = vectors[kept] @ vectors[kept].T
    assert similarity[np.triu_indices(len(kept), 1)].max() < 0.9
    index = {u: i for i, u in enumerate(uids)}
    for uid, (other, cosine) in removed.items():
        assert other not in removed and cosine == pytest.approx(float(vectors[index[uid]] @ vectors[index[other]]))


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
def test_keep_fraction_keeps_about_that_share(fraction: float) -> None:
    rng = np.random.default_rng(2)
    # Copies at many distances from their original, so every share is reachable by some threshold.
    rows = [near_copies(rng.normal(size=32), 5, noise, rng) for noise in np.linspace(0.02, 0.6, 60)]
    vectors = np.concatenate(rows)
    uids = [f"u{i:03d}" for i in range(len(vectors))]
    kept = len(uids) - len(semantic_duplicates(uids, vectors, keep_fraction=fraction))
    assert abs(kept / len(uids) - fraction) < 0.05
    assert semantic_duplicates(uids, vectors, keep_fraction=1.0) == {}


def test_input_order_does_not_matter() -> None:
    uids, vectors = grouped(groups=8, size=4, singles=30, seed=3)
    order = np.random.default_rng(4).permutation(len(uids))
    for cut in ({"threshold": 0.95}, {"keep_fraction": 0.5}):
        shuffled = semantic_duplicates([uids[i] for i in order], vectors[order], **cut)  # type: ignore[arg-type]
        assert shuffled == semantic_duplicates(uids, vectors, **cut)  # type: ignore[arg-type]


def test_threshold_one_removes_only_identical_copies() -> None:
    uids, vectors = grouped(groups=5, size=2, singles=10)
    assert semantic_duplicates(uids, vectors, threshold=1.0) == {}
    copies = np.concatenate([vectors, vectors[:1]])  # float32 dot of a copy is 1 - 1e-7: still a duplicate
    assert set(semantic_duplicates([*uids, "zz-copy"], copies, threshold=1.0)) == {"zz-copy"}


@pytest.mark.parametrize(
    "arguments",
    [
        {},
        {"threshold": 0.9, "keep_fraction": 0.5},
        {"threshold": 0.0},
        {"threshold": 1.5},
        {"keep_fraction": 0.0},
        {"keep_fraction": 1.2},
        {"threshold": 0.9, "clusters": 0},
    ],
)
def test_bad_arguments_are_config_errors(arguments: dict[str, float]) -> None:
    uids, vectors = grouped(groups=2, size=2, singles=2)
    with pytest.raises(ConfigError):
        semantic_duplicates(uids, vectors, **arguments)  # type: ignore[arg-type]


def test_mismatched_inputs_are_config_errors() -> None:
    uids, vectors = grouped(groups=2, size=2, singles=2)
    with pytest.raises(ConfigError, match="one embedding row per uid"):
        semantic_duplicates(uids[:-1], vectors, threshold=0.9)
    with pytest.raises(ConfigError, match="once"):
        semantic_duplicates([uids[0], *uids[:-1]], vectors, threshold=0.9)


@pytest.fixture()
def dataset(trainable: tuple[Path, Path], tmp_path: Path) -> Path:
    copy = tmp_path / "dataset"
    shutil.copytree(trainable[1], copy)  # the session dataset is shared: never curate it in place
    return copy


def split_of_images(store: DatasetStore) -> dict[str, str]:
    split = {s["study_instance_uid"]: s["split"] for s in store.read_table("studies").to_pylist()}
    return {r["sop_instance_uid"]: split[r["study_instance_uid"]] for r in store.read_table("images").to_pylist()}


def write_embeddings(store: DatasetStore, vectors: dict[str, np.ndarray], model: str | dict[str, str] = MODEL) -> None:
    study = {r["sop_instance_uid"]: r["study_instance_uid"] for r in store.read_table("images").to_pylist()}
    rows = [
        {
            "sop_instance_uid": uid,
            "study_instance_uid": study[uid],
            "embedding": vector.tolist(),
            "model": model if isinstance(model, str) else model[uid],
        }
        for uid, vector in sorted(vectors.items())
    ]
    replace_table(store, "embeddings", pa.Table.from_pylist(rows, schema=EMBEDDINGS))


def test_curate_prunes_semantic_duplicates_in_train_only(dataset: Path) -> None:
    store = DatasetStore(str(dataset))
    splits = split_of_images(store)
    before = training_view(store).texts["train"]
    train = sorted(before)  # unpruned training images with a report
    held_out = sorted(u for u, s in splits.items() if s != "train")
    assert len(train) >= 6 and held_out, "the fixture needs training and held-out images"
    rng = np.random.default_rng(5)
    vectors = dict(zip(sorted(splits), unit(rng.normal(size=(len(splits), 48))), strict=True))
    groups = [train[0:3], train[3:5]]
    for group in groups:
        for uid, vector in zip(group, near_copies(vectors[group[0]], len(group), 0.01, rng), strict=True):
            vectors[uid] = vector
    for uid in held_out[:2]:  # a validation or test image repeating a training image is never pruned
        vectors[uid] = near_copies(vectors[train[0]], 1, 0.01, rng)[0]
    write_embeddings(store, vectors)

    summary = curate_dataset(str(dataset), semantic=SemanticRule(threshold=0.95))

    assert summary.semantic_duplicates == 3 and summary.semantic_model == MODEL
    rows = {r["sop_instance_uid"]: r for r in read_delta(dataset / "curation").to_pylist()}
    semantic = {u for u, r in rows.items() if r["duplicate_kind"] == "semantic"}
    assert semantic <= set(train)
    for group in groups:
        kept = set(group) - semantic
        assert len(kept) == 1
        for uid in set(group) - kept:
            assert rows[uid]["prune"] and rows[uid]["duplicate_of"] in kept
            reason = rows[uid]["prune_reason"]
            assert reason.startswith(f"semantic duplicate of {rows[uid]['duplicate_of']} (cosine 0.9")
            assert reason.endswith(f", {MODEL})")
    assert not any(rows[u]["prune"] for u in held_out)
    after = training_view(store).texts["train"]
    assert set(after) == set(before) - semantic


def test_curate_without_the_rule_leaves_embeddings_unused(dataset: Path) -> None:
    store = DatasetStore(str(dataset))
    splits = split_of_images(store)
    write_embeddings(store, dict.fromkeys(splits, unit(np.ones((1, 8)))[0]))  # all identical
    summary = curate_dataset(str(dataset))
    assert summary.semantic_duplicates == 0 and summary.semantic_model is None
    kinds = {r["duplicate_kind"] for r in read_delta(dataset / "curation").to_pylist()}
    assert "semantic" not in kinds


def test_missing_mixed_or_absent_embeddings_are_source_errors(dataset: Path) -> None:
    store = DatasetStore(str(dataset))
    splits = split_of_images(store)
    rule = SemanticRule(keep_fraction=0.5)
    with pytest.raises(SourceError, match=r"no embeddings/ table: run `radpipe embed"):
        curate_dataset(str(dataset), semantic=rule)
    vectors = dict(zip(sorted(splits), unit(np.random.default_rng(6).normal(size=(len(splits), 16))), strict=True))
    stale = next(u for u in sorted(splits) if splits[u] == "train")
    write_embeddings(store, {u: v for u, v in vectors.items() if u != stale})
    with pytest.raises(SourceError, match=r"lacks 1 of \d+ training images.*re-run `radpipe embed"):
        curate_dataset(str(dataset), semantic=rule)
    write_embeddings(store, vectors, {u: MODEL if u != stale else "models:/radpipe-foundation/2" for u in vectors})
    with pytest.raises(SourceError, match="mixes 2 models"):
        curate_dataset(str(dataset), semantic=rule)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "radpipe.cli", *args], capture_output=True, text=True, timeout=120)


def test_cli_without_embeddings_is_one_line(dataset: Path) -> None:
    result = run_cli("curate", str(dataset), "--semantic-keep", "0.33")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "radpipe embed" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_cli_bad_semantic_value_is_one_line() -> None:
    result = run_cli("curate", "/nonexistent/dataset", "--semantic-threshold", "1.5")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "(0, 1]" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize("keep", [0.01, 0.05])
def test_a_small_keep_fraction_on_spread_out_vectors_keeps_about_that_many(keep: float) -> None:
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(200, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    uids = [f"u{i:03d}" for i in range(200)]
    removed = semantic_duplicates(uids, vectors.astype(np.float32), keep_fraction=keep, clusters=4)
    kept = 200 - len(removed)
    assert 200 * keep <= kept <= 200 * keep + 10
    assert all(kept_uid not in removed for kept_uid, _ in removed.values())
