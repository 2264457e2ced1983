"""The foundation model as an MLflow pyfunc: DICOM bytes, stored pixels and/or text in, embeddings out, and
for a model with a report decoder a written report per image.

It carries its preprocessing profile, so a downstream user never re-implements windowing or resizing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types.schema import AnyType, Array, ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

from radpipe.dataset.pixels import decode_pixels
from radpipe.model.embedder import Embedder
from radpipe.model.generate import GenerationConfig, generation_settings
from radpipe.model.report_text import SECTIONS

SPEC, WEIGHTS, TOKENIZER, TEXT_CHECKPOINT = "spec", "weights", "tokenizer", "text_checkpoint"
REPORT_TOKENIZER = "report_tokenizer"

INPUTS = Schema(
    [
        ColSpec("binary", "dicom", required=False),  # a whole DICOM file; the model's profile is applied
        ColSpec("binary", "pixels", required=False),  # a stored images/ row: raw little-endian bytes
        ColSpec(Array("long"), "shape", required=False),
        ColSpec("string", "dtype", required=False),
        ColSpec("string", "text", required=False),  # report text
        # 3D models: a CT/MR series as its DICOM files (any order), or a stored volumes/ row in pixels,
        # shape and dtype with the volume profile it was resampled with. Not Array("binary"): MLflow turns that
        # into fixed-width numpy bytes, which drop a file's trailing NUL bytes (an MR slice ending in air lost
        # its last pixels); `image_of` checks that every item is bytes.
        ColSpec(Array(AnyType()), "series", required=False),
        ColSpec("string", "profile", required=False),
    ]
)
EMBEDDINGS: list[ColSpec | TensorSpec] = [
    ColSpec(Array("float"), "image_embedding", required=False),
    ColSpec(Array("float"), "text_embedding", required=False),
]
# A model with a report decoder: the written report (its sections joined) and each section, per image row.
REPORT_COLUMNS = ("report", *SECTIONS)
# predict(..., params=...): whether and how to write (greedy by default; beams or seeded sampling on request).
GENERATION_PARAMS = ParamSchema(
    [
        ParamSpec("generate", "boolean", True),
        ParamSpec("num_beams", "long", 1),
        ParamSpec("max_length", "long", 0),
        ParamSpec("temperature", "double", 0.0),
        ParamSpec("seed", "long", 0),
    ]
)


def signature(writes_reports: bool) -> ModelSignature:
    """Embeddings out; with a report decoder also the report columns, and the generation parameters."""
    if not writes_reports:
        return ModelSignature(inputs=INPUTS, outputs=Schema(EMBEDDINGS))
    reports = [ColSpec("string", name, required=False) for name in REPORT_COLUMNS]
    return ModelSignature(inputs=INPUTS, outputs=Schema([*EMBEDDINGS, *reports]), params=GENERATION_PARAMS)


SIGNATURE = signature(False)


# Shown in the MLflow UI beside the signature; text only, so no image (and no patient) is stored with the model.
INPUT_EXAMPLE = pd.DataFrame({"text": ["No pleural effusion or pneumothorax."]})


class FoundationModel(PythonModel):
    """Rows with `dicom`, or `pixels`+`shape`+`dtype`, and/or `text`; each present input is embedded."""

    def load_context(self, context: Any) -> None:
        # Kept so a fine-tune ships this model's own spec, tokenizer and text checkpoint files unchanged.
        self.artifacts: dict[str, str] = dict(context.artifacts)
        self.embedder = load_embedder(self.artifacts)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return embed_frame(self.embedder, model_input, params)


def load_embedder(artifacts: Mapping[str, str]) -> Embedder:
    """The embedder from a packaged model's artifact files (this model's, or a fine-tune's)."""

    def optional(name: str) -> Path | None:
        return Path(artifacts[name]) if name in artifacts else None

    return Embedder.load(
        Path(artifacts[SPEC]),
        Path(artifacts[WEIGHTS]),
        optional(TOKENIZER),
        optional(TEXT_CHECKPOINT),
        optional(REPORT_TOKENIZER),
    )


def generation_config(params: Mapping[str, Any] | None) -> GenerationConfig | None:
    """The generation settings a predict call asks for; None when it asks for none (`generate: false`)."""
    given = dict(params or {})
    if not given.pop("generate", True):
        return None
    return generation_settings({k: v for k, v in given.items() if v is not None})


def read_images(embedder: Embedder, frame: pd.DataFrame) -> tuple[list[int], list[np.ndarray]]:
    """(rows with an image input, their model inputs); an unreadable image raises naming its row only."""
    image_rows, images = [], []
    for i in range(len(frame)):
        try:
            image = image_of(embedder, frame, i)
        except Exception as exc:  # one line naming the row, never the content (it may be a patient's file)
            raise ValueError(f"row {i}: image input could not be read ({type(exc).__name__}: {exc})") from None
        if image is not None:
            image_rows.append(i)
            images.append(image)
    return image_rows, images


def embed_frame(embedder: Embedder, frame: pd.DataFrame, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    n = len(frame)
    image_rows, images = read_images(embedder, frame)
    text_rows = [i for i in range(n) if "text" in frame and isinstance(frame["text"].iloc[i], str)]
    image_out: list[Any] = [None] * n
    text_out: list[Any] = [None] * n
    for i, vector in zip(image_rows, embedder.embed_images(images), strict=True):
        image_out[i] = vector.tolist()
    texts = [frame["text"].iloc[i] for i in text_rows]
    for i, vector in zip(text_rows, embedder.embed_texts(texts), strict=True):
        text_out[i] = vector.tolist()
    out = pd.DataFrame({"image_embedding": image_out, "text_embedding": text_out})
    generation = generation_config(params) if embedder.writer is not None else None
    if embedder.writer is None or generation is None:
        return out
    columns: dict[str, list[Any]] = {name: [None] * n for name in REPORT_COLUMNS}
    for i, sections in zip(image_rows, embedder.writer.write(images, generation), strict=True):
        for name, text in sections.as_dict().items():
            columns[name][i] = text
    return out.assign(**columns)


def _present(frame: pd.DataFrame, column: str, i: int) -> bool:
    return column in frame and isinstance(frame[column].iloc[i], bytes | bytearray)


def image_of(embedder: Embedder, frame: pd.DataFrame, i: int) -> np.ndarray | None:
    """Row i's image (`dicom`, `series`, or `pixels`+`shape`+`dtype`) as a model input; None if it has none."""
    if "series" in frame and isinstance(frame["series"].iloc[i], list | tuple | np.ndarray):
        files = list(frame["series"].iloc[i])
        if not all(isinstance(raw, bytes | bytearray) for raw in files):
            raise TypeError("series must be a list of DICOM files' bytes")
        return embedder.series_input([bytes(raw) for raw in files])
    if _present(frame, "dicom", i):
        return embedder.dicom_input(bytes(frame["dicom"].iloc[i]))
    if _present(frame, "pixels", i):
        pixels = decode_pixels(frame["pixels"].iloc[i], frame["shape"].iloc[i], str(frame["dtype"].iloc[i]))
        if embedder.volumetric and (pixels.ndim == 3 or not embedder.radiographs):
            profile = frame["profile"].iloc[i] if "profile" in frame else None
            return embedder.volume_input(pixels, str(profile))
        return embedder.image_input(pixels)
    return None
