"""A registered foundation model's embedder, loaded from the MLflow registry (MLflow loads only when called)."""

from __future__ import annotations

from radpipe.errors import ConfigError
from radpipe.model.embedder import Embedder


def load_registered_embedder(model_uri: str) -> Embedder:
    """The image/report embedder inside a registered radpipe foundation model (pinned models:/ URI)."""
    from radpipe import tracking

    model = tracking.load_python_model(model_uri)
    embedder = getattr(model, "embedder", None)
    if not isinstance(embedder, Embedder):
        raise ConfigError(f"{model_uri} is not a radpipe foundation model (no image/report embedder)")
    return embedder
