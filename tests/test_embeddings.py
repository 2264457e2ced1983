"""`radpipe embed`: one unit-norm row per image, made by one pinned model version, as the model embeds it,
in the calling process (the default without RAY_ADDRESS) or through a pool of Ray actors; and evaluation's
embedding through the same pool."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from radpipe.commands import embed_images, evaluate_model
from radpipe.dataset.store import DatasetStore
from radpipe.evaluate.data import iter_pixels
from radpipe.model.registered import load_registered_embedder
from radpipe.settings import get_settings
from radpipe.train.ray import EmbeddingFailed, embedding_parts, ray_session
from tests.registry import register_untrained

pytestmark = pytest.mark.integration


def test_every_image_is_embedded_once_as_the_model_embeds_it(trainable: tuple[Path, Path], tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    shutil.copytree(trainable[1], dataset)
    uri = register_untrained(trainable[1], "embed-test-model", seed=4)
    progress: list[tuple[int, int]] = []
    summary = embed_images(uri, str(dataset), lambda done, total: progress.append((done, total)), actors=0)

    store = DatasetStore(str(dataset))
    images = store.read_table("images", ["sop_instance_uid"])["sop_instance_uid"].to_pylist()
    table = store.read_table("embeddings")
    assert sorted(table["sop_instance_uid"].to_pylist()) == sorted(images)  # each image once, none lost
    assert summary.images == len(images) and progress[-1] == (len(images), len(images))
    assert set(table["model"].to_pylist()) == {uri}
    vectors = np.stack(table["embedding"].to_numpy(zero_copy_only=False))
    assert vectors.shape == (len(images), summary.dimensions)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    embedder = load_registered_embedder(uri)
    uid, pixels = next(iter_pixels(store, images[:1]))
    row = table["sop_instance_uid"].to_pylist().index(uid)
    np.testing.assert_allclose(vectors[row], embedder.embed_images([embedder.image_input(pixels)])[0], atol=1e-5)

    again = embed_images(uri, str(dataset), actors=0)  # replaced whole: a rerun doubles nothing
    assert again.images == len(images) and store.read_table("embeddings").num_rows == len(images)


def test_the_actor_pool_embeds_as_the_calling_process_does(trainable: tuple[Path, Path], tmp_path: Path) -> None:
    """Ray Data's actors (two asked for, capped at Ray's CPUs minus one so reads still find a CPU) and the
    in-process path write the same rows, whatever order the actors finish their batches in."""
    dataset = tmp_path / "dataset"
    shutil.copytree(trainable[1], dataset)
    uri = register_untrained(trainable[1], "embed-pool-test-model", seed=5)
    store = DatasetStore(str(dataset))

    def written() -> dict[str, np.ndarray]:
        table = store.read_table("embeddings")
        uids = table["sop_instance_uid"].to_pylist()
        assert len(set(uids)) == len(uids)
        return dict(zip(uids, table["embedding"].to_numpy(zero_copy_only=False), strict=True))

    progress: list[tuple[int, int]] = []
    with ray_session(None, get_settings().home / "ray"):  # one Ray instance for both pool runs
        pooled = embed_images(uri, str(dataset), lambda done, total: progress.append((done, total)), actors=2)
        # An actor that cannot start (here: no such model in the registry) is one line, not Ray's tracebacks.
        with pytest.raises(EmbeddingFailed, match=r"^embedding on Ray actors failed: .*no-such-model"):
            next(embedding_parts(store, "models:/no-such-model/1", get_settings(), 1))
    assert progress[-1] == (pooled.images, pooled.images)
    by_pool = written()
    local = embed_images(uri, str(dataset), actors=0)
    by_process = written()
    assert pooled.images == local.images == len(by_pool) == len(by_process)
    assert by_pool.keys() == by_process.keys()
    for uid, vector in by_process.items():
        np.testing.assert_allclose(by_pool[uid], vector, atol=1e-5)


def test_evaluation_through_the_actor_pool_gives_the_metrics_of_the_calling_process(
    trainable: tuple[Path, Path],
) -> None:
    """`radpipe evaluate --actors 1`: the test and probe images go through one pass of the pool; every metric
    matches the in-process evaluation's (same seed) to rounding."""
    import ray

    uri = register_untrained(trainable[1], "eval-pool-test-model", seed=6)
    said: list[str] = []
    was_running = ray.is_initialized()
    pooled = evaluate_model(uri, str(trainable[1]), seed=2, resamples=50, on_status=said.append, actors=1)
    assert ray.is_initialized() == was_running
    assert any(message.endswith("on Ray actors") for message in said), said
    local = evaluate_model(uri, str(trainable[1]), seed=2, resamples=50, actors=0)
    assert pooled.images == local.images
    assert pooled.metrics.keys() == local.metrics.keys() and "probe_auroc_macro" in local.metrics
    for name, value in local.metrics.items():
        assert pooled.metrics[name] == pytest.approx(value, abs=1e-3), name
