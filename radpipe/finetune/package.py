"""A fine-tune's MLflow package: the parent's spec, tokenizer (and text checkpoint), the weights and the head."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from radpipe import tracking
from radpipe.finetune.pyfunc import FINDING, HEAD, SIGNATURE, FindingModel
from radpipe.model.pyfunc import WEIGHTS
from radpipe.preprocess.profile import get_profile


def log_finding_model(
    run_id: str,
    parent_artifacts: Mapping[str, str],
    model_state: Mapping[str, Any] | None,
    head_state: Mapping[str, Any],
    label: str,
    profile: str,
    registered_model: str,
    tags: Mapping[str, str],
) -> tuple[str, str]:
    """Log the fine-tune into the run and register it; returns (version, models:/ URI).

    `model_state` None (frozen mode) ships the parent's weights file itself: the encoder is the parent's, bit for bit.
    """
    with tempfile.TemporaryDirectory() as folder:
        artifacts = {name: Path(path) for name, path in parent_artifacts.items()}
        if model_state is not None:
            artifacts[WEIGHTS] = Path(folder, "weights.pt")
            torch.save(dict(model_state), artifacts[WEIGHTS])
        artifacts[HEAD] = Path(folder, "head.pt")
        torch.save(dict(head_state), artifacts[HEAD])
        artifacts[FINDING] = Path(folder, "finding.json")
        artifacts[FINDING].write_text(json.dumps({"label": label}))
        return tracking.log_model(
            run_id,
            FindingModel(),
            {name: str(path) for name, path in artifacts.items()},
            SIGNATURE,
            registered_model,
            tags,
            input_example=input_example(profile),
        )


def input_example(profile: str) -> pd.DataFrame:
    """An images/ row of the profile, blank: shows callers the image columns, and holds no patient's image."""
    spec = get_profile(profile)
    blank = np.zeros(spec.size, dtype=spec.dtype)
    return pd.DataFrame({"pixels": [blank.tobytes()], "shape": [list(blank.shape)], "dtype": [spec.dtype]})
