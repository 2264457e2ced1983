"""Gated promotion: the decision rule, a worse model kept out of @champion, and promotions serialised."""

from __future__ import annotations

import math
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from radpipe import tracking
from radpipe.errors import ConfigError
from radpipe.evaluate.promotion import decide, higher_is_better, promote, promotion_lock
from radpipe.evaluate.run import evaluate
from radpipe.settings import get_settings
from tests.registry import register_untrained


def test_no_champion_means_promote() -> None:
    assert decide(0.6, None).promote


def test_only_a_strictly_better_candidate_wins() -> None:
    assert decide(0.71, 0.70).promote
    assert not decide(0.70, 0.70).promote  # a tie keeps the champion: no churn for nothing
    assert not decide(0.69, 0.70).promote
    assert not decide(0.705, 0.70, min_improvement=0.01).promote
    assert decide(0.72, 0.70, min_improvement=0.01).promote


def test_an_undefined_metric_never_promotes() -> None:
    assert not decide(math.nan, None).promote


def test_a_rank_metric_promotes_the_lower_one() -> None:
    assert not higher_is_better("retrieval_image_to_text_median_rank")
    assert not higher_is_better("volume_retrieval_image_to_text_median_rank")
    assert higher_is_better("modality_accuracy") and higher_is_better("volume_zeroshot_auroc_macro")
    assert decide(2.0, 3.0, higher_better=False).promote
    assert not decide(4.0, 3.0, higher_better=False).promote


@pytest.mark.parametrize(
    "metric", ["zeroshot_auroc_macro_ci_low", "train_loss", "val_top1", "volume_train_loss", "volume_modality_accuracy"]
)
def test_metrics_that_cannot_rank_models_are_refused(metric: str) -> None:
    with pytest.raises(ConfigError):
        higher_is_better(metric)


def test_a_negative_margin_is_refused() -> None:
    with pytest.raises(ConfigError, match="min-improvement"):
        decide(0.6, 0.7, min_improvement=-0.2)


def _version(uri: str) -> str:
    return uri.rsplit("/", 1)[1]


def two_that_differ(dataset: Path, name: str) -> list[tuple[float, str]]:
    """Two registered versions of `name` whose metric on the (small) test split differs, worst first.

    Random models often tie on a handful of test images; seeds are tried in order, so this is deterministic.
    """
    found: list[tuple[float, str]] = []
    for seed in range(1, 9):
        uri = register_untrained(dataset, name, seed=seed)
        value = evaluate(uri, str(dataset), get_settings(), resamples=50).metrics["zeroshot_auroc_macro"]
        if not found or value != found[0][0]:
            found.append((value, uri))
        if len(found) == 2:
            return sorted(found)
    raise AssertionError("no two seeds gave different metrics")


@pytest.fixture(scope="module")
def ranked(trainable: tuple[Path, Path]) -> tuple[str, list[tuple[float, str]]]:
    return str(trainable[1]), two_that_differ(trainable[1], "gate-test-model")


@pytest.mark.integration
def test_a_worse_model_is_not_promoted_and_both_numbers_are_recorded(ranked) -> None:
    dataset, [(worse_value, worse), (better_value, better)] = ranked
    first = promote(better, dataset, get_settings())
    assert first.promoted and first.champion_uri is None

    second = promote(worse, dataset, get_settings())
    assert not second.promoted
    assert second.candidate_value == pytest.approx(worse_value)
    assert second.champion_value == pytest.approx(better_value)

    client = MlflowClient(tracking.current_uri())
    assert str(client.get_model_version_by_alias("gate-test-model", "champion").version) == _version(better)
    tags = client.get_model_version("gate-test-model", _version(worse)).tags
    assert tags["promotion.champion.decision"] == "not promoted"
    assert float(tags["promotion.champion.candidate_value"]) == pytest.approx(worse_value, abs=1e-6)
    assert float(tags["promotion.champion.champion_value"]) == pytest.approx(better_value, abs=1e-6)
    assert tags["promotion.champion.champion_version"] == _version(better)
    assert tags["promotion.champion.dataset_version"] == second.dataset_version


@pytest.mark.integration
def test_a_better_model_takes_the_alias(trainable: tuple[Path, Path]) -> None:
    dataset = str(trainable[1])
    (_, worse), (_, better) = two_that_differ(trainable[1], "gate-climb-model")
    assert promote(worse, dataset, get_settings()).promoted
    climbed = promote(better, dataset, get_settings())
    assert climbed.promoted and climbed.champion_uri == worse
    client = MlflowClient(tracking.current_uri())
    assert str(client.get_model_version_by_alias("gate-climb-model", "champion").version) == _version(better)


@pytest.mark.integration
@pytest.mark.slow
def test_concurrent_promotions_are_serialised(trainable: tuple[Path, Path]) -> None:
    """Two `radpipe promote` at once: the second sees the first's champion, and the better model ends on top."""
    dataset = str(trainable[1])
    ranked = two_that_differ(trainable[1], "race-model")
    values = {uri: value for value, uri in ranked}
    uris = [uri for _, uri in ranked]
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking.current_uri()}
    command = [sys.executable, "-m", "radpipe.cli", "promote"]
    racers = [subprocess.Popen([*command, u, dataset], env=env, stdout=subprocess.PIPE, text=True) for u in uris]
    for racer in racers:
        racer.communicate(timeout=600)
        assert racer.returncode == 0
    client = MlflowClient(tracking.current_uri())
    champion = str(client.get_model_version_by_alias("race-model", "champion").version)
    assert champion == _version(max(uris, key=lambda u: values[u]))
    seen = [
        client.get_model_version("race-model", _version(u)).tags["promotion.champion.champion_version"] for u in uris
    ]
    assert seen.count("none") == 1  # exactly one decided with no champion; the other compared against it


def _blocked_on_a_lock(pid: int, within: float = 10.0) -> bool:
    """The kernel lists the process as waiting for a file lock (a `->` line of /proc/locks)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if "->" in fields and str(pid) in fields:
                return True
        time.sleep(0.1)
    return False


@pytest.mark.integration
@pytest.mark.slow
def test_a_promotion_waits_for_the_lock(trainable: tuple[Path, Path]) -> None:
    """While another promotion holds the model's lock, `radpipe promote` decides nothing; then it goes on."""
    dataset = str(trainable[1])
    [(_, uri)] = two_that_differ(trainable[1], "lock-model")[:1]
    evaluate(uri, dataset, get_settings(), resamples=50)
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking.current_uri()}
    client = MlflowClient(tracking.current_uri())
    command = [sys.executable, "-m", "radpipe.cli", "promote", uri, dataset]
    said: list[str] = []
    with promotion_lock(get_settings().home, "lock-model"):
        waiting = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        try:
            lines: queue.Queue[str] = queue.Queue()
            threading.Thread(target=lambda: [lines.put(line) for line in waiting.stderr or ()], daemon=True).start()
            while not said or "waiting for another promotion of lock-model to finish" not in said[-1]:
                said.append(lines.get(timeout=120))  # said just before it blocks on the lock
            assert _blocked_on_a_lock(waiting.pid), "".join(said)
            assert waiting.poll() is None
            assert "promotion.champion.decision" not in client.get_model_version("lock-model", _version(uri)).tags
        except BaseException:
            waiting.kill()
            raise
    assert waiting.wait(timeout=300) == 0
    assert client.get_model_version("lock-model", _version(uri)).tags["promotion.champion.decision"] == "promoted"
