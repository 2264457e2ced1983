"""Training and evaluation read a dataset on s3:// (the loopback S3 server): Ray Data streams it from the store,
the validation status is read there, and the run records the same dataset version as the local copy's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from radpipe.dataset.store import DatasetStore
from radpipe.quality.status import dataset_version, require_validated
from radpipe.settings import get_settings
from radpipe.train.run import train
from tests import s3server
from tests.train.tiny import tiny_experiment

s3_server = s3server.s3_server
s3_env = s3server.s3_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def ray_with_s3_environment(s3_env: str, local_ray: None) -> Iterator[str]:
    """Ray's workers take their environment when Ray starts: restart it with the S3 variables set."""
    import ray

    ray.shutdown()
    ray.init(num_cpus=4, include_dashboard=True, dashboard_host="127.0.0.1", logging_level="WARNING")
    yield s3_env
    ray.shutdown()  # later tests get the session's Ray back, without these variables
    ray.init(num_cpus=4, include_dashboard=True, dashboard_host="127.0.0.1", logging_level="WARNING")


def test_train_on_an_s3_dataset(trainable: tuple[Path, Path], ray_with_s3_environment: str) -> None:
    local = trainable[1]
    fs, root = fsspec.url_to_fs(ray_with_s3_environment)
    fs.put(str(local) + "/", f"{root}/dataset", recursive=True)  # the validated dataset, byte for byte
    dataset = ray_with_s3_environment + "dataset"
    store = DatasetStore(dataset)

    assert dataset_version(store) == dataset_version(DatasetStore(str(local)))
    assert require_validated(store) == dataset_version(store)
    summary = train(dataset, tiny_experiment(steps=4, checkpoint_every=4, val_every=4), get_settings())
    assert summary.dataset_version == dataset_version(store) and summary.model_version

    from radpipe.evaluate.run import evaluate

    evaluation = evaluate(summary.model_uri, dataset, get_settings(), resamples=50, seed=3)
    assert evaluation.dataset_version == dataset_version(store)
