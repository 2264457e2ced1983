"""The benchmark suites find the checkout's configs, held-out sets and corpora (they moved into radpipe/bench/)."""

from __future__ import annotations

from radpipe.bench import CHECKOUT
from radpipe.bench.deid import DATA


def test_the_benchmarks_read_the_checkout() -> None:
    for config in ("smoke.yaml", "demo.yaml", "smoke-3d.yaml"):  # train, prune and volume-memory suites
        assert (CHECKOUT / "configs" / config).is_file(), config
    assert (DATA / "scrub_heldout2.jsonl").is_file()  # the deid suite's held-out sets
    assert (CHECKOUT / "pyproject.toml").is_file()
