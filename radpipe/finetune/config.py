"""What a fine-tune is asked to do: which finding, how much of the encoder learns, on how many examples."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from radpipe.errors import ConfigError, first_problem
from radpipe.reports.label_rules import LABELS

Mode = Literal["frozen", "partial"]


class FinetuneConfig(BaseModel):
    # A typo in a setting must fail loudly, not train a different head than the one asked for.
    model_config = ConfigDict(frozen=True, extra="forbid")

    # frozen: a linear head on the foundation embedding, which is computed once (seconds on a CPU).
    # partial: the image encoder's last stage and projection learn too, for findings pretraining left entangled.
    mode: Mode = "frozen"
    # Passes over the training images; the head is small, so many passes are cheap.
    epochs: int = Field(100, ge=1, le=100_000)
    # The head's learning rate; its input is a unit-norm embedding, so a large step is safe.
    lr: float = Field(1e-2, gt=0, le=10)
    # partial mode: small steps keep the pretrained last stage from being overwritten by a few examples.
    encoder_lr: float = Field(1e-4, gt=0, le=10)
    # --task report: the report decoder's learning rate (a transformer: far smaller steps than a linear head).
    decoder_lr: float = Field(3e-4, gt=0, le=10)
    # On the head only: the encoder's pretrained weights are not pulled towards zero.
    weight_decay: float = Field(1e-4, ge=0)
    batch_size: int = Field(64, ge=1)
    # Few-shot: train on this many positive images (a seeded choice) and every negative; None uses all positives.
    shots: int | None = Field(None, ge=1)
    # Seeds the few-shot choice, the head's initialisation, the batch order and the bootstrap.
    seed: int = Field(0, ge=0)
    # Bootstrap resamples for the AUROC interval.
    resamples: int = Field(1000, ge=0)
    # The MLflow experiment of fine-tuning runs (each names its finding and dataset version).
    experiment: str = Field("radpipe-finetune", min_length=1)


def finetune_config(**values: Any) -> FinetuneConfig:
    """A validated config; any bad value is one ConfigError line naming the setting."""
    try:
        return FinetuneConfig.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(f"fine-tune setting {first_problem(exc, 'config', show_input=True)}") from None


def finding_label(name: str) -> str:
    """The label struct's name for a finding (`pleural-effusion` is accepted too: it is the model's name)."""
    label = name.strip().lower().replace("-", "_").replace(" ", "_")
    if label not in LABELS:
        raise ConfigError(f"unknown label {name!r}; one of: {', '.join(LABELS)}")
    return label


def registered_name(label: str) -> str:
    """CONTRACT.md: fine-tunes register as radpipe-<task>; MLflow names read better with hyphens."""
    return "radpipe-" + label.replace("_", "-")
