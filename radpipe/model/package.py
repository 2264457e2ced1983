"""The foundation model's MLflow package: weights, spec, tokenizer (and a text checkpoint) as one pyfunc."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from radpipe import tracking
from radpipe.model.config import ModelConfig
from radpipe.model.embedder import ModelSpec
from radpipe.model.pyfunc import (
    INPUT_EXAMPLE,
    REPORT_TOKENIZER,
    SPEC,
    TEXT_CHECKPOINT,
    TOKENIZER,
    WEIGHTS,
    FoundationModel,
    signature,
)


def log_foundation_model(
    run_id: str,
    model: ModelConfig,
    profile: str,
    model_state: Mapping[str, Any],
    tokenizer_json: str | None,
    registered_model: str,
    tags: Mapping[str, str],
    report_tokenizer_json: str | None = None,
) -> tuple[str, str]:
    """Log the model into the run and register it; returns (version, models:/ URI). A model with a report
    decoder also ships the decoder's vocabulary."""
    with tempfile.TemporaryDirectory() as folder:
        artifacts = {SPEC: Path(folder, "spec.json"), WEIGHTS: Path(folder, "weights.pt")}
        artifacts[SPEC].write_text(ModelSpec(model, profile).to_json())
        torch.save(dict(model_state), artifacts[WEIGHTS])
        if tokenizer_json is not None:
            artifacts[TOKENIZER] = Path(folder, "tokenizer.json")
            artifacts[TOKENIZER].write_text(tokenizer_json)
        if report_tokenizer_json is not None:
            artifacts[REPORT_TOKENIZER] = Path(folder, "report_tokenizer.json")
            artifacts[REPORT_TOKENIZER].write_text(report_tokenizer_json)
        if model.text.checkpoint:
            artifacts[TEXT_CHECKPOINT] = Path(model.text.checkpoint)
        return tracking.log_model(
            run_id,
            FoundationModel(),
            {name: str(path) for name, path in artifacts.items()},
            signature(model.writes_reports),
            registered_model,
            tags,
            input_example=INPUT_EXAMPLE,
        )
