"""`radpipe embed`: every image of a dataset through a registered model into the `embeddings/` table.

The input of semantic pruning (radpipe/curate/semantic.py) and of retrieval. Reads images/ a row group at a
time and writes as it goes, so memory stays bounded whatever the dataset size; the table is replaced whole,
so it always holds one model's embeddings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from radpipe.dataset.commit import stream_table
from radpipe.dataset.pixels import decode_row
from radpipe.dataset.schema import EMBEDDINGS
from radpipe.dataset.store import DatasetStore
from radpipe.errors import ConfigError, SourceError
from radpipe.model.embedder import Embedder
from radpipe.ops.facts import RunFacts, summary_record
from radpipe.settings import Settings

Progress = Callable[[int, int], None]  # (images done, total)
# Image uids (None: every image) to their embeddings/ rows, a part at a time, from a pool of Ray actors.
EmbeddingParts = Callable[[Sequence[str] | None], Iterator[pa.Table]]


@dataclass
class EmbeddingSummary:
    model_uri: str  # pinned: the version that made the table
    images: int
    dimensions: int
    table: str

    def facts(self) -> RunFacts:
        return RunFacts(metrics={"images": float(self.images)}, model_versions=(self.model_uri,))

    def record(self) -> dict[str, Any]:
        return summary_record(self, self.facts())


def embedding_table(embedder: Embedder, rows: list[dict[str, Any]], model: str) -> pa.Table:
    """images/ rows (uids and pixels) to their embeddings/ rows."""
    vectors = embedder.embed_images([embedder.image_input(decode_row(r)) for r in rows])
    return pa.Table.from_pydict(
        {
            "sop_instance_uid": [r["sop_instance_uid"] for r in rows],
            "study_instance_uid": [r["study_instance_uid"] for r in rows],
            "embedding": [v.astype(np.float32) for v in vectors],
            "model": [model] * len(rows),
        },
        schema=EMBEDDINGS,
    )


def embedding_rows(store: DatasetStore, embedder: Embedder, model: str) -> Iterator[pa.Table]:
    """One embeddings/ part per images/ row group, in this process."""
    for group in store.iter_row_groups(
        "images", ["sop_instance_uid", "study_instance_uid", "pixels", "shape", "dtype"]
    ):
        rows = group.rows.to_pylist()
        if rows:
            yield embedding_table(embedder, rows, model)


def embed_dataset(
    model_uri: str,
    dataset: str,
    settings: Settings,
    on_progress: Progress | None = None,
    actors: int | None = None,
) -> EmbeddingSummary:
    """Embed every image with the model (its own profile checked against the data) into embeddings/.

    `actors`: where (embedding_pool). On one machine a pool's start-up costs more than it saves (1234 demo
    images: 6.9-8.6 s in process, 24.8-25.9 s through a local pool of one actor)."""
    from radpipe import tracking
    from radpipe.dataset.profiles import dataset_profile
    from radpipe.model.registered import load_registered_embedder

    store = DatasetStore(dataset)
    if not store.table_files("images"):
        raise SourceError(f"not an ingested radpipe dataset (no images/): {dataset}")
    tracking.configure(settings)
    ref = tracking.resolve_model(model_uri)
    embedder = load_registered_embedder(ref.pinned)
    profile = dataset_profile(store)
    if embedder.image_profile != profile:
        raise ConfigError(f"{ref.pinned} expects profile {embedder.spec.profile}, the dataset holds {profile}")
    total = store.count_rows("images")
    done = [0]

    def counted(parts: Iterator[pa.Table]) -> Iterator[pa.Table]:
        for part in parts:
            done[0] += part.num_rows
            if on_progress is not None:
                on_progress(done[0], total)
            yield part

    with embedding_pool(store, ref.pinned, settings, actors) as pool:
        parts = embedding_rows(store, embedder, ref.pinned) if pool is None else pool(None)
        stream_table(store, "embeddings", counted(parts), EMBEDDINGS)
    return EmbeddingSummary(ref.pinned, done[0], embedder.spec.model.embed_dim, store.path("embeddings"))


@contextmanager
def embedding_pool(
    store: DatasetStore, model_uri: str, settings: Settings, actors: int | None
) -> Iterator[EmbeddingParts | None]:
    """Where a command embeds images: None for this process, else a pool of Ray actors inside one Ray session.

    `actors` None: the pool on RAY_ADDRESS's cluster when one is set (one actor per GPU, else one), this process
    otherwise; N: a pool of N actors (radpipe.train.ray.embedding_parts), on the cluster or a local instance; 0:
    this process."""
    if actors == 0 or (actors is None and not settings.ray_address):
        yield None
        return
    from radpipe.train.ray import embedding_parts, ray_session
    from radpipe.train.run import check_cluster_settings

    check_cluster_settings(settings, checkpoints=False)  # actors on other nodes must reach the registry
    with ray_session(settings.ray_address, settings.home / "ray"):

        def parts(uids: Sequence[str] | None) -> Iterator[pa.Table]:
            return embedding_parts(store, model_uri, settings, actors, uids)

        yield parts
