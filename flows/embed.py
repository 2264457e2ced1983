"""Batch embedding flow (thin over radpipe.commands): a registered model's embeddings of every image."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.ops import record_ops
from radpipe.commands import embed_images

CHAMPION = "models:/radpipe-foundation@champion"


@task(cache_policy=NO_CACHE)
def embed_task(model_uri: str, dataset: str) -> dict[str, Any]:
    logger = get_run_logger()
    step = {"next": 0}

    def on_progress(done: int, total: int) -> None:
        if total and done * 10 >= step["next"] * total:
            logger.info("embedded %d/%d images", done, total)
            step["next"] = done * 10 // total + 1

    return embed_images(model_uri, dataset, on_progress).record()


@flow(name="embed", on_completion=[record_ops], on_failure=[record_ops])
def embed_flow(dataset: str, model_uri: str = CHAMPION) -> dict[str, Any]:
    """Embed every image of the dataset with a registered model into DATASET/embeddings/."""
    return embed_task(model_uri, dataset)
