"""What an evaluation is and what makes two evaluations comparable (imports nothing else of radpipe at run time).

Promotion, the ops table, the benchmarks and the flows read the headline metrics and the protocol digest from
here without loading MLflow, matplotlib or scikit-learn.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from radpipe.evaluate.metrics import Estimate

# The metrics recorded on the model version per dataset version: what promotion, dashboards and ops compare.
ENCODER_HEADLINE = (
    "zeroshot_auroc_macro",
    "probe_auroc_macro",
    "retrieval_image_to_text_recall_at_5",
    "retrieval_text_to_image_recall_at_5",
)
# Models with a report decoder (objective captioning or coca) add these.
GENERATION_HEADLINE = ("generation_f1_macro", "generation_bleu4", "generation_rougeL", "reasoning_consistency")
# Models of radiographs and volumes add these (the volume_ metrics are the encoder's on the CT/MR test series).
MODALITY_HEADLINE = ("modality_accuracy", "volume_zeroshot_auroc_macro", "volume_generation_f1_macro")
HEADLINE = ENCODER_HEADLINE + GENERATION_HEADLINE + MODALITY_HEADLINE
# A probe on more train images than this learns no more (embed_dim features), but costs embedding time.
PROBE_IMAGES = 4000
# The modules whose code defines the numbers (paths in the radpipe package): the data read and decoded, the
# report text compared, the prompts, the metrics and how they are combined. Plots, how a run is logged
# (record.py, plots.py) and promotion do not change a number.
_DEFINING = (
    *(
        f"evaluate/{name}.py"
        for name in (
            "data",
            "generation",
            "metrics",
            "modality",
            "probe",
            "prompts",
            "protocol",
            "retrieval",
            "run",
            "zeroshot",
        )
    ),
    # written reports: how they are generated, split into sections and compared, and the labeller that reads them
    "model/generate.py",
    "model/report_text.py",
    "model/exam.py",
    "reports/labeler.py",
    "reports/label_rules.py",
    "dataset/pixels.py",
    "dataset/profiles.py",
    "reports/sections.py",
)


@dataclass
class Evaluation:
    """Everything computed, before it is logged (pure; the tests check it without MLflow)."""

    metrics: dict[str, float]
    zeroshot: dict[str, Estimate]
    probe: dict[str, Estimate]
    truths: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]
    examples: list[Any]
    images: dict[str, int]
    generation: Any = None  # radpipe.evaluate.generation.GenerationResult for a model that writes reports
    # The test rows (radpipe.evaluate.data.LabelledSplit) and their embeddings, for metrics across evaluations.
    test: Any = None
    test_embeddings: np.ndarray | None = None


def protocol_digest(seed: int) -> str:
    """What makes two evaluations comparable: the code that defines the numbers, and the seed.

    Promotion reuses a stored evaluation only when its digest matches, so an edited prompt or metric never
    compares a stale champion number with a fresh candidate one; a changed plot title does not force that.
    """
    digest = hashlib.sha256(f"seed={seed};probe={PROBE_IMAGES}".encode())
    package = Path(__file__).parents[1]
    for name in _DEFINING:
        digest.update(name.encode() + (package / name).read_bytes())
    return digest.hexdigest()[:16]


def version_tag(dataset_version: str, key: str) -> str:
    """The model-version tag holding an evaluation's `key` (a metric, run_id, protocol) on one dataset version."""
    return f"eval.{dataset_version}.{key}"
