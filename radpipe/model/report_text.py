"""What a report decoder learns to write and reads back: the target text, its vocabulary, its sections.

The target is `[FINDINGS] ... [REASONING] <rationale> [IMPRESSION] ...` (CheXOne: the reasoning before the
conclusion); section markers are single special tokens, so a generated report splits into its sections
exactly, whatever words the model writes.

The vocabulary keeps case and records where spaces were ("▁" starts a word), so written text decodes to
exactly the characters the model chose: "john.doe@example.com", "Helen Quinn" or "04/2015" reach the
scrubber as its rules expect them, not lower-cased and spaced out ("john . doe @ example . com").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer, normalizers, pre_tokenizers

from radpipe.model.config import DecoderConfig
from radpipe.model.text import train_tokenizer
from radpipe.reports.sections import split_sections

BOS, EOS = "[BOS]", "[EOS]"
SPACE = "▁"  # marks a word that followed a space (SentencePiece's convention)
SECTIONS = ("findings", "reasoning", "impression")
MARKERS = {name: f"[{name.upper()}]" for name in SECTIONS}
SPECIAL = (BOS, EOS, *MARKERS.values())


@dataclass(frozen=True)
class Sections:
    """A report as its three sections ("" where absent)."""

    findings: str = ""
    reasoning: str = ""
    impression: str = ""

    def report(self) -> str:
        """`FINDINGS: ...` / `REASONING: ...` / `IMPRESSION: ...`, one line each, empty sections left out."""
        return "\n".join(f"{name.upper()}: {getattr(self, name)}" for name in SECTIONS if getattr(self, name))

    def as_dict(self) -> dict[str, str]:
        return {"report": self.report(), **{name: getattr(self, name) for name in SECTIONS}}


def reference_sections(
    findings: str | None, impression: str | None, text: str | None, rationale: str | None, with_reasoning: bool
) -> Sections:
    """A stored report's sections; a report without FINDINGS/IMPRESSION headings is all findings."""
    findings, impression = (findings or "").strip(), (impression or "").strip()
    if not findings and not impression:
        parts = split_sections(text or "")
        findings = parts.get("findings") or parts.get("preamble", "")
        impression = parts.get("impression", "")
    reasoning = " ".join((rationale or "").split()) if with_reasoning else ""
    return Sections(" ".join(findings.split()), reasoning, " ".join(impression.split()))


def target_text(sections: Sections) -> str:
    """The decoder's training target: markers and section bodies (empty reasoning leaves its marker out)."""
    parts = []
    for name in SECTIONS:
        body = getattr(sections, name)
        if body or name != "reasoning":
            parts.append(f"{MARKERS[name]} {body}".strip())
    return " ".join(parts)


def train_report_tokenizer(targets: Iterable[str], cfg: DecoderConfig, min_report_frequency: int) -> str:
    """A case-keeping WordPiece vocabulary of the training targets (words split at spaces, marked "▁", and
    at punctuation), plus [BOS], [EOS] and the section markers (JSON)."""
    tokenizer = train_tokenizer(
        targets,
        cfg.vocab_size,
        min_report_frequency,
        normalizer=normalizers.NFC(),
        pre_tokenizer=pre_tokenizers.Sequence(
            [pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="always"), pre_tokenizers.Punctuation()]
        ),
    )
    tokenizer.add_special_tokens(list(SPECIAL))
    return str(tokenizer.to_str())


class ReportTokenizer:
    """Targets to fixed-length id arrays ([BOS] ... [EOS], 0-padded), and generated ids back to sections."""

    def __init__(self, tokenizer_json: str, max_length: int) -> None:
        self._tok = Tokenizer.from_str(tokenizer_json)
        self.max_length = max_length
        self.bos, self.eos = self._id(BOS), self._id(EOS)
        self.markers = {self._id(marker): name for name, marker in MARKERS.items()}
        self._specials = {0, self.bos, self.eos, *self.markers}

    def _id(self, token: str) -> int:
        found = self._tok.token_to_id(token)
        if found is None:
            raise ValueError(f"the report tokenizer lacks {token}: not a radpipe report decoder's vocabulary")
        return int(found)

    @property
    def vocab_size(self) -> int:
        return int(self._tok.get_vocab_size())

    def __call__(self, targets: list[str]) -> np.ndarray:
        """int32 [len(targets), max_length]: [BOS], the target's tokens, [EOS] (cut at max_length), then 0."""
        out = np.zeros((len(targets), self.max_length), dtype=np.int32)
        for row, encoding in enumerate(self._tok.encode_batch(targets, add_special_tokens=False)):
            ids = [self.bos, *encoding.ids, self.eos][: self.max_length]
            out[row, : len(ids)] = ids
        return out

    def sections(self, ids: Iterable[int]) -> Sections:
        """Generated ids (after [BOS]) to sections: each marker opens its section; [EOS] ends the report."""
        found: dict[str, list[int]] = {}
        current = "findings"  # words before any marker are findings
        for token in ids:
            token = int(token)
            if token == self.eos:
                break
            if token in self.markers:
                current = self.markers[token]
                found.setdefault(current, [])
                continue
            found.setdefault(current, []).append(token)
        return Sections(**{name: self._text(tokens) for name, tokens in found.items()})

    def _text(self, ids: list[int]) -> str:
        """The characters the ids spell: pieces joined, "▁" back to a space (specials never reach here)."""
        pieces = [self._tok.id_to_token(i) or "" for i in ids if i not in self._specials]
        text = "".join(p[2:] if p.startswith("##") else p for p in pieces)
        return " ".join(text.replace(SPACE, " ").split())

    def normalise(self, text: str) -> str:
        """A reference text as the decoder's vocabulary spells it (what metrics compare written text with)."""
        return self._text(self._tok.encode(" ".join(text.split()), add_special_tokens=False).ids)
