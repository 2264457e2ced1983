"""A trained model with its tokenizer and preprocessing profile: images and texts in, embeddings out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from radpipe.model.clip import ContrastiveModel
from radpipe.model.coca import CoCaModel, build_model
from radpipe.model.config import ModelConfig
from radpipe.model.inputs import input_batches
from radpipe.model.report_text import ReportTokenizer
from radpipe.model.report_writer import ReportWriter
from radpipe.model.text import TextTokenizer
from radpipe.preprocess.dicom_image import image_from_dicom
from radpipe.preprocess.profile import Profile, get_profile, to_model_input
from radpipe.preprocess.series import volume_from_files
from radpipe.preprocess.volume import Intensity, VolumeProfile, get_volume_profile, to_model_volume

# Rows embedded per forward pass: bounded memory whatever the caller sends (volumes are far larger).
CHUNK = 64
VOLUME_CHUNK = 4


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

    def __init__(
        self,
        spec: ModelSpec,
        model: ContrastiveModel,
        tokenizer: TextTokenizer,
        report_tokenizer: ReportTokenizer | None = None,
    ) -> None:
        self.spec = spec
        # A 3D model's spec names its volume profiles ("ct-small,mr-small"); a 2D model's, one image profile; a
        # model of both, the two joined by "+" ("cxr-224+ct-small,mr-small").
        self.volumetric = spec.model.image.spatial_dims == 3  # takes CT/MR volumes
        self.radiographs = not self.volumetric or spec.model.image.radiographs  # takes radiographs
        image_profile, volume_profiles = _profile_parts(spec)
        self.image_profile = image_profile  # the radiographs' profile; "" for a model of volumes only
        self._profile: Profile | None = get_profile(image_profile) if image_profile else None
        self.volume_profiles = {
            _modality(p): p for p in (get_volume_profile(n) for n in volume_profiles.split(",") if n)
        }
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = next(model.parameters()).device
        # A model with a report decoder (objective captioning or coca) also writes reports.
        self.writer = (
            ReportWriter(model, report_tokenizer)
            if isinstance(model, CoCaModel) and report_tokenizer is not None
            else None
        )

    @classmethod
    def load(
        cls,
        spec_file: Path,
        weights_file: Path,
        tokenizer_file: Path | None,
        text_checkpoint: Path | None = None,
        report_tokenizer_file: Path | None = None,
    ) -> Embedder:
        spec = ModelSpec.from_json(spec_file.read_text())
        if text_checkpoint is not None:  # the checkpoint travels with the model: point at this copy
            text = spec.model.text.model_copy(update={"checkpoint": str(text_checkpoint)})
            spec = ModelSpec(spec.model.model_copy(update={"text": text}), spec.profile)
        tokenizer_json = tokenizer_file.read_text() if tokenizer_file else None
        tokenizer = TextTokenizer(spec.model.text, tokenizer_json)
        report_tokenizer = None
        if spec.model.writes_reports:
            if report_tokenizer_file is None:
                raise ValueError(f"a {spec.model.objective} model needs its report tokenizer file")
            report_tokenizer = ReportTokenizer(report_tokenizer_file.read_text(), spec.model.decoder.max_length)
        decoder_vocab = report_tokenizer.vocab_size if report_tokenizer else None
        model = build_model(spec.model, tokenizer.vocab_size, decoder_vocab)
        model.load_state_dict(torch.load(weights_file, map_location="cpu", weights_only=True))
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return cls(spec, model.to(device), tokenizer, report_tokenizer)

    @property
    def profile(self) -> Profile:
        if self._profile is None:
            raise ValueError("this model embeds CT/MR volumes: pass a series (its DICOM files) in the series column")
        return self._profile

    def volume_input(self, volume: np.ndarray, profile_name: str) -> np.ndarray:
        """A stored volumes/ row (at one of the model's volume profiles) to the model's input [3, D, H, W]."""
        profiles = {p.name: p for p in self.volume_profiles.values()}
        if not self.volumetric:
            raise ValueError("this model embeds 2D radiographs, not volumes")
        if profile_name not in profiles or tuple(volume.shape) != profiles[profile_name].size:
            raise ValueError(
                f"volume must be resampled with one of the model's profiles ({', '.join(profiles)}), "
                f"got {profile_name} {tuple(volume.shape)}; pass the DICOM files in the series column"
            )
        return to_model_volume(volume, profiles[profile_name])

    def series_input(self, raws: list[bytes]) -> np.ndarray:
        """The DICOM files of one CT/MR series (any order) to the model's input, as ingest would prepare it."""
        if not self.volumetric:
            raise ValueError("this model embeds 2D radiographs, not series")
        volume, profile = volume_from_files(raws, self.volume_profiles)
        return to_model_volume(volume, profile)

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
        """Model inputs (from image_input/dicom_input/series_input, in any mix) to unit-norm embeddings
        [N, embed_dim], in order."""
        out = np.empty((len(images), self.spec.model.embed_dim), np.float32)
        for rows, batch in input_batches(images, self.device, CHUNK, VOLUME_CHUNK):
            out[rows] = self.model.encode_image(batch).float().cpu().numpy()
        return out

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), CHUNK):
            ids, mask = self.tokenizer(list(texts[start : start + CHUNK]))
            tensors = (torch.from_numpy(ids).long().to(self.device), torch.from_numpy(mask).long().to(self.device))
            out.append(self.model.encode_text(*tensors).float().cpu().numpy())
        return np.concatenate(out) if out else np.empty((0, self.spec.model.embed_dim), np.float32)


def _profile_parts(spec: ModelSpec) -> tuple[str, str]:
    """(image profile, volume profiles) of a spec's profile; either may be empty."""
    if spec.model.image.radiographs:
        image, _, volumes = spec.profile.partition("+")
        return image, volumes
    return ("", spec.profile) if spec.model.image.spatial_dims == 3 else (spec.profile, "")


def _modality(profile: VolumeProfile) -> str:
    """CT profiles window Hounsfield units; MR ones normalise by percentiles (MR has no absolute scale)."""
    return "CT" if profile.intensity is Intensity.HU else "MR"
