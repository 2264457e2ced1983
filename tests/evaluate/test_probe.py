from __future__ import annotations

import numpy as np

from radpipe.evaluate.probe import probe_aurocs


def test_probe_reads_a_linearly_encoded_label_and_not_noise() -> None:
    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        effusion = rng.integers(0, 2, n)
        emb = rng.normal(size=(n, 16))
        emb[:, 3] += 2.0 * effusion  # one direction carries the finding
        noise = rng.integers(0, 2, n).astype(float)
        noise[:5] = np.nan  # unmentioned rows are left out, not counted as absent
        return emb, {"pleural_effusion": effusion.astype(float), "edema": noise, "fracture": np.zeros(n)}

    train_emb, train_labels = split(300)
    test_emb, test_labels = split(200)
    result = probe_aurocs(train_emb, train_labels, test_emb, test_labels, resamples=200)
    assert set(result) == {"pleural_effusion", "edema"}  # fracture: one class only
    assert result["pleural_effusion"].value > 0.9
    assert 0.35 < result["edema"].value < 0.65
    assert result == probe_aurocs(train_emb, train_labels, test_emb, test_labels, resamples=200)  # reproducible
