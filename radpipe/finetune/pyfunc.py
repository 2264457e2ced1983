"""A fine-tune as an MLflow pyfunc: the foundation model's inputs in, one probability of the finding per row out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types.schema import ColSpec, Schema
from torch import nn

from radpipe.finetune.classifier import probabilities
from radpipe.model.embedder import Embedder
from radpipe.model.pyfunc import SIGNATURE as FOUNDATION_SIGNATURE
from radpipe.model.pyfunc import load_embedder, read_images

HEAD, FINDING = "head", "finding"

SIGNATURE = ModelSignature(
    # The foundation model's columns, so a caller swaps one model for the other; `text` is accepted and unused.
    inputs=FOUNDATION_SIGNATURE.inputs,
    # NaN for a row with no image input (text only): there is nothing to classify.
    outputs=Schema([ColSpec("double", "probability")]),
)


class FindingModel(PythonModel):
    """Rows with `dicom`, or `pixels`+`shape`+`dtype`: P(finding) from the (fine-tuned) encoder and the head."""

    def load_context(self, context: Any) -> None:
        artifacts = context.artifacts
        self.embedder = load_embedder(artifacts)
        self.label: str = json.loads(Path(artifacts[FINDING]).read_text())["label"]
        self.head = load_head(Path(artifacts[HEAD]), self.embedder)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return classify_frame(self.embedder, self.head, model_input)


def load_head(path: Path, embedder: Embedder) -> nn.Linear:
    head = nn.Linear(embedder.spec.model.embed_dim, 1)
    head.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return head.to(embedder.device).eval()


def classify_frame(embedder: Embedder, head: nn.Linear, frame: pd.DataFrame) -> pd.DataFrame:
    rows, images = read_images(embedder, frame)
    out = np.full(len(frame), np.nan)
    if rows:
        out[rows] = probabilities(head, embedder.embed_images(images))
    return pd.DataFrame({"probability": out})
