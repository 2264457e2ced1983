"""Typed, validated experiment configs, loaded from YAML under configs/."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from radpipe.errors import ConfigError, first_problem


class _Frozen(BaseModel):
    # A typo in a YAML key must fail loudly, not train a different model than the one asked for.
    model_config = ConfigDict(frozen=True, extra="forbid")


class ImageEncoderConfig(_Frozen):
    # resnet: cheap, strong on small data (smoke runs); vit: the usual foundation-model choice on GPUs.
    arch: Literal["resnet", "vit"] = "resnet"
    # 2 for radiographs, 3 for CT/MR volumes: the same network code serves both.
    spatial_dims: Literal[2, 3] = 2
    # 2D and 3D in one model (RadFM): a 3D ResNet that also takes radiographs, as volumes of depth 1 (computed
    # as the 2D operations they reduce to; radpipe.model.depth_one). Training then alternates modality-pure
    # radiograph and volume batches (train.radiograph_fraction); radiographs enter at `input_size`.
    radiographs: bool = False
    # Side of the square input; the stored profile image is resized to it in the data path and in `predict`.
    # Volumes (spatial_dims 3) enter at their volume profile's size (D, H, W) instead; a 3D ViT needs that
    # size to be input_size on every side (its patch grid is fixed).
    input_size: int = Field(224, ge=32, le=1024)
    # ResNet: blocks per stage and channels per stage (as MONAI's ResNet takes them).
    resnet_layers: tuple[int, ...] = (1, 1, 1, 1)
    resnet_widths: tuple[int, ...] = (32, 64, 128, 256)
    # ResNet: stride of the 7-wide first convolution. 1 is MONAI's default (the stem halves the side, by its max
    # pool); 2 is torchvision's ImageNet stem (a quarter of the side): every stage then runs on a quarter of
    # the positions (a demo-size 2D encoder step 0.12 -> 0.03 s, 8 ct-small volumes 0.61 -> 0.10 s).
    resnet_stem_stride: Literal[1, 2] = 1
    # ViT: patch side, width, depth and heads.
    patch_size: int = Field(16, ge=2)
    hidden_size: int = Field(384, ge=32)
    num_layers: int = Field(6, ge=1)
    num_heads: int = Field(6, ge=1)

    @property
    def channels(self) -> int:
        """Radiographs: one grey channel. Volumes: one per window preset (lung, mediastinum, bone); MR's single
        channel is repeated, so CT and MR share one network."""
        return 3 if self.spatial_dims == 3 else 1

    @model_validator(mode="after")
    def _check(self) -> ImageEncoderConfig:
        if self.radiographs and (self.spatial_dims != 3 or self.arch != "resnet"):
            raise ValueError("radiographs: true needs spatial_dims 3 and arch resnet (a 3D ResNet takes depth-1 input)")
        if self.arch == "resnet" and not len(self.resnet_layers) == len(self.resnet_widths) == 4:
            raise ValueError("resnet_layers and resnet_widths need 4 entries each (the ResNet has 4 stages)")
        if self.arch == "vit":
            if self.input_size % self.patch_size:
                raise ValueError(f"input_size {self.input_size} is not a multiple of patch_size {self.patch_size}")
            if self.hidden_size % self.num_heads:
                raise ValueError("hidden_size must be a multiple of num_heads")
        return self


class TextEncoderConfig(_Frozen):
    # A local Hugging Face checkpoint directory (no hub access at run time); None trains a small transformer.
    checkpoint: str | None = None
    # Tokenizer trained on the dataset's own report text: radiology words stay whole.
    vocab_size: int = Field(4000, ge=100)
    # A word enters the vocabulary only if this many reports use it. The tokenizer ships with the model, so
    # a name the scrubber missed (found in one patient's reports) must not become a vocabulary entry.
    min_report_frequency: int = Field(3, ge=1)
    # Reports longer than this are truncated; findings + impression of a chest film fit in 128 tokens.
    max_length: int = Field(128, ge=8, le=1024)
    width: int = Field(256, ge=16)
    num_layers: int = Field(4, ge=1)
    num_heads: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _check(self) -> TextEncoderConfig:
        if self.width % self.num_heads:
            raise ValueError("text width must be a multiple of num_heads")
        return self


class DecoderConfig(_Frozen):
    """The report writer of the `captioning` and `coca` objectives: a causal transformer whose every layer
    cross-attends to the image encoder's tokens (open_clip's CoCa multimodal decoder, without sharing the
    text encoder's layers). It has its own vocabulary, trained on the training targets (sections, reasoning)."""

    vocab_size: int = Field(4000, ge=100)
    # Tokens of the whole target, [BOS] and [EOS] included: findings, reasoning and impression of a chest film
    # fit in 160; longer targets are cut (and then end without [EOS]).
    max_length: int = Field(160, ge=8, le=2048)
    width: int = Field(256, ge=16)
    num_layers: int = Field(4, ge=1)
    num_heads: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _check(self) -> DecoderConfig:
        if self.width % self.num_heads:
            raise ValueError("decoder width must be a multiple of num_heads")
        return self


class ModelConfig(_Frozen):
    # contrastive: CLIP's image-report loss alone (an encoder). captioning: the report decoder alone.
    # coca: both, as one weighted sum (open_clip's CoCa: contrastive 1, captioning 2).
    objective: Literal["contrastive", "captioning", "coca"] = "contrastive"
    image: ImageEncoderConfig = ImageEncoderConfig()
    text: TextEncoderConfig = TextEncoderConfig()
    decoder: DecoderConfig = DecoderConfig()
    # The shared embedding space both encoders project into.
    embed_dim: int = Field(256, ge=8)
    # CLIP's initial temperature; learnable, clamped so logits never exceed 100.
    init_temperature: float = Field(0.07, gt=0, le=1)
    contrastive_weight: float = Field(1.0, ge=0)
    caption_weight: float = Field(2.0, ge=0)

    @property
    def mixed(self) -> bool:
        """Radiographs and CT/MR volumes in one model (RadFM)."""
        return self.image.radiographs

    @property
    def writes_reports(self) -> bool:
        return self.objective != "contrastive"

    @property
    def loss_weights(self) -> tuple[float, float]:
        """(contrastive, captioning) weights of the objective's loss."""
        if self.objective == "contrastive":
            return 1.0, 0.0
        if self.objective == "captioning":
            return 0.0, 1.0
        return self.contrastive_weight, self.caption_weight


class AugmentConfig(_Frozen):
    # Light, anatomy-preserving augmentation: no flips (situs matters), small shifts and contrast changes.
    max_shift: float = Field(0.05, ge=0, le=0.3)  # fraction of the side
    max_scale: float = Field(0.1, ge=0, le=0.5)  # zoom in or out by up to this fraction
    contrast: float = Field(0.2, ge=0, le=1)  # gamma range around 1


class TargetTextConfig(_Frozen):
    # include: a report decoder learns `FINDINGS ... REASONING <rationale> IMPRESSION ...` where the report has a
    # radiologist's reasoning trace (CheXOne), so it writes its reasoning before its conclusion; exclude: never.
    rationale: Literal["include", "exclude"] = "include"


class TrainConfig(_Frozen):
    # Total optimiser steps (over all workers); the run ends exactly here, resumed or not.
    steps: int = Field(200, ge=1)
    # Per worker; contrastive learning likes large global batches (negatives), so GPUs go much higher.
    batch_size: int = Field(32, ge=2)
    # A model of radiographs and volumes (model.image.radiographs): the share of steps that take a radiograph
    # batch (the others take a volume batch, of volume_batch_size; None: batch_size). Steps alternate by this
    # ratio evenly and identically on every worker.
    radiograph_fraction: float = Field(0.75, gt=0, lt=1)
    volume_batch_size: int | None = Field(None, ge=2)
    lr: float = Field(3e-4, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    warmup_steps: int = Field(10, ge=0)
    # auto: bf16 where the device supports it fast (CUDA with bf16), else fp32; CPU bf16 is slower than fp32.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    # Trade compute for memory on large (3D) inputs.
    gradient_checkpointing: bool = False
    checkpoint_every: int = Field(50, ge=1)
    log_every: int = Field(5, ge=1)
    val_every: int = Field(50, ge=1)
    val_batches: int = Field(4, ge=1)
    seed: int = 0
    augment: AugmentConfig = AugmentConfig()
    text: TargetTextConfig = TargetTextConfig()
    # A training split that fits (prepared images and tokens) is prepared once and kept in Ray's object store
    # (also at most a quarter of it); a larger one streams every epoch. 0 always streams.
    cache_gb: float = Field(2.0, ge=0)


class ScalingConfig(_Frozen):
    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False
    # CPU threads per training worker (torch intra-op threads).
    cpus_per_worker: int = Field(1, ge=1)
    # CPUs the streaming loader keeps on a local Ray instance, beside the workers; the stream must not stall.
    loader_cpus: int = Field(1, ge=1)
    # A dead worker restarts the group from the last checkpoint this many times before the run fails.
    max_failures: int = Field(2, ge=0)


class ExperimentConfig(_Frozen):
    name: str = "radpipe-foundation"
    # The registered model (CONTRACT.md: radpipe-foundation, configurable); checked here, not after training.
    registered_model: str = Field("radpipe-foundation", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    scaling: ScalingConfig = ScalingConfig()

    @model_validator(mode="after")
    def _check(self) -> ExperimentConfig:
        if self.train.warmup_steps >= self.train.steps:
            raise ValueError("warmup_steps must be below steps")
        return self


def load_config(path: str | Path | None) -> ExperimentConfig:
    """Read a YAML experiment config (None: the defaults); one-line ConfigError on any problem."""
    if path is None:
        return ExperimentConfig()
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({type(exc).__name__})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {first_problem(exc, 'config')}") from None
