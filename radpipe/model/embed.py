"""A trained model with its tokenizer and preprocessing profile: images and texts in, embeddings out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from radpipe.model.clip import ContrastiveModel
from radpipe.model.config import ModelConfig
from radpipe.model.text import TextTokenizer
from radpipe.preprocess.dicom_image import image_from_dicom
from radpipe.preprocess.profile import Profile, get_profile, to_model_input

# Rows embedded per forward pass: bounded memory whatever the caller sends.
CHUNK = 64


@dataclass(frozen=True)
class ModelSpec:
    """What, besides weights, serving needs to reproduce training exactly."""

    model: ModelConfig
    profile: str  # the dataset's preprocessing profile (CONTRACT.md): applied to DICOM input in `predict`

    def to_json(self) -> str:
        return json.dumps({"model": self.model.model_dump(mode="json"), "profile": self.profile}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        raw = json.loads(text)
        return cls(model=ModelConfig.model_validate(raw["model"]), profile=raw["profile"])


class Embedder:
    """Embeds DICOM files, stored profile images and report texts into the model's shared space."""

    def __init__(self, spec: ModelSpec, model: ContrastiveModel, tokenizer: TextTokenizer) -> None:
        self.spec = spec
        self.profile: Profile = get_profile(spec.profile)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = next(model.parameters()).device

    @classmethod
    def load(
        cls, spec_file: Path, weights_file: Path, tokenizer_file: Path | None, text_checkpoint: Path | None = None
    ) -> Embedder:
        spec = ModelSpec.from_json(spec_file.read_text())
        if text_checkpoint is not None:  # the checkpoint travels with the model: point at this copy
            text = spec.model.text.model_copy(update={"checkpoint": str(text_checkpoint)})
            spec = ModelSpec(spec.model.model_copy(update={"text": text}), spec.profile)
        tokenizer_json = tokenizer_file.read_text() if tokenizer_file else None
        tokenizer = TextTokenizer(spec.model.text, tokenizer_json)
        model = ContrastiveModel(spec.model, tokenizer.vocab_size)
        model.load_state_dict(torch.load(weights_file, map_location="cpu", weights_only=True))
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return cls(spec, model.to(device), tokenizer)

    def image_input(self, image: np.ndarray) -> np.ndarray:
        """An image preprocessed with the model's profile (an images/ row) to the model's input layout."""
        expected = (tuple(self.profile.size), self.profile.dtype)
        if (image.shape, str(image.dtype)) != expected:
            raise ValueError(
                f"pixels must be preprocessed with profile {self.profile.name} ({expected[0][0]}x{expected[0][1]} "
                f"{expected[1]}), got {image.shape} {image.dtype}; pass raw files in the dicom column"
            )
        return to_model_input(image, self.spec.model.image.input_size)

    def dicom_input(self, raw: bytes) -> np.ndarray:
        return self.image_input(image_from_dicom(raw, self.profile))

    @torch.no_grad()
    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Model inputs (from image_input/dicom_input) to unit-norm embeddings [N, embed_dim]."""
        out = []
        for start in range(0, len(images), CHUNK):
            chunk = np.stack(images[start : start + CHUNK])[:, None]
            out.append(self.model.encode_image(torch.from_numpy(chunk).to(self.device)).float().cpu().numpy())
        return np.concatenate(out) if out else np.empty((0, self.spec.model.embed_dim), np.float32)

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), CHUNK):
            ids, mask = self.tokenizer(list(texts[start : start + CHUNK]))
            tensors = (torch.from_numpy(ids).long().to(self.device), torch.from_numpy(mask).long().to(self.device))
            out.append(self.model.encode_text(*tensors).float().cpu().numpy())
        return np.concatenate(out) if out else np.empty((0, self.spec.model.embed_dim), np.float32)
