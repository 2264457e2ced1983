"""A trained report decoder with its vocabulary: model inputs in, scrubbed report sections out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from radpipe.deid.identifiers import IdentifierIndex
from radpipe.deid.text import scrub_text
from radpipe.model.coca import CoCaModel
from radpipe.model.generate import GREEDY, GenerationConfig, generate
from radpipe.model.inputs import input_batches
from radpipe.model.report_text import SECTIONS, ReportTokenizer, Sections

# Images written per forward pass (every generated token re-runs the decoder over the batch).
CHUNK = 32
VOLUME_CHUNK = 4


class ReportWriter:
    """Writes reports for prepared images or volumes. Every section passes the report scrubber before it is
    returned: a decoder trained on de-identified text can still spell out a name, a date or an ID."""

    def __init__(self, model: CoCaModel, tokenizer: ReportTokenizer) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = next(model.parameters()).device

    @torch.no_grad()
    def write(
        self,
        images: Sequence[np.ndarray],
        cfg: GenerationConfig = GREEDY,
        identifiers: IdentifierIndex | None = None,
    ) -> list[Sections]:
        """Model inputs (an Embedder's image_input/series_input) to report sections, in order.

        `identifiers` (a dataset's identifier index) also removes every identifier form its headers gave.
        """
        out: list[Sections] = [Sections()] * len(images)
        for rows, batch in input_batches(images, self.device, CHUNK, VOLUME_CHUNK):
            seeded = cfg.model_copy(update={"seed": cfg.seed + rows[0]})  # each chunk its own reproducible draw
            for row, ids in zip(
                rows, generate(self.model, batch, self.tokenizer.bos, self.tokenizer.eos, seeded), strict=True
            ):
                out[row] = scrubbed(self.tokenizer.sections(ids), identifiers)
        return out


def scrubbed(sections: Sections, identifiers: IdentifierIndex | None = None) -> Sections:
    """Sections through the same scrubber ingested reports pass (no patient: dates become [DATE])."""
    present = [name for name in SECTIONS if getattr(sections, name)]
    return replace(sections, **{name: scrub_text(getattr(sections, name), index=identifiers) for name in present})
