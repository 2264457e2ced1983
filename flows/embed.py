"""Batch embedding flow (thin over radpipe.context): the champion's embeddings of every image."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.ops import record_ops
from radpipe.context import embed_images
from radpipe.errors import RadpipeError

CHAMPION = "models:/radpipe-foundation@champion"


@task(cache_policy=NO_CACHE)
def embed_task(model_uri: str, dataset: str) -> dict[str, Any]:
    logger = get_run_logger()
    step = {"next": 0}

    def on_progress(done: int, total: int) -> None:
        if total and done * 10 >= step["next"] * total:
            logger.info("embedded %d/%d images", done, total)
            step["next"] = done * 10 // total + 1

    return asdict(embed_images(model_uri, dataset, on_progress))


@flow(name="embed", on_completion=[record_ops], on_failure=[record_ops])
def embed_flow(dataset: str, model_uri: str = CHAMPION) -> dict[str, Any]:
    """Embed every image of the dataset with a registered model into DATASET/embeddings/."""
    return embed_task(model_uri, dataset)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run the radpipe batch embedding flow")
    parser.add_argument("dataset")
    parser.add_argument("--model", default=CHAMPION, help=f"model URI (default {CHAMPION})")
    args = parser.parse_args(argv)
    try:
        result = embed_flow(args.dataset, args.model)
    except RadpipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"embedded {result['images']} images with {result['model_uri']} into {result['table']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
