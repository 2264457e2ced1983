"""What a report decoder learns to write and reads back: the target text, its vocabulary, its sections.

The target is `[FINDINGS] ... [REASONING] <rationale> [IMPRESSION] ...` (CheXOne: the reasoning before the
conclusion); section markers are single special tokens, so a generated report splits into its sections
exactly, whatever words the model writes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer, decoders

from radpipe.model.config import DecoderConfig
from radpipe.model.text import train_tokenizer
from radpipe.reports.sections import split_sections

BOS, EOS = "[BOS]", "[EOS]"
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
    """A WordPiece vocabulary of the training targets plus [BOS], [EOS] and the section markers (JSON)."""
    tokenizer = train_tokenizer(targets, cfg.vocab_size, min_report_frequency)
    tokenizer.add_special_tokens(list(SPECIAL))
    tokenizer.decoder = decoders.WordPiece()
    return str(tokenizer.to_str())


class ReportTokenizer:
    """Targets to fixed-length id arrays ([BOS] ... [EOS], 0-padded), and generated ids back to sections."""

    def __init__(self, tokenizer_json: str, max_length: int) -> None:
        self._tok = Tokenizer.from_str(tokenizer_json)
        self.max_length = max_length
        self.bos, self.eos = self._id(BOS), self._id(EOS)
        self.markers = {self._id(marker): name for name, marker in MARKERS.items()}

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
        text = str(self._tok.decode(ids, skip_special_tokens=True))
        return _placeholders(_sentence_case(_tidy(" ".join(text.split()))))

    def normalise(self, text: str) -> str:
        """A reference text as the decoder could write it (lower-cased, re-spaced): what metrics compare."""
        return self._text(self._tok.encode(text, add_special_tokens=False).ids)


def _tidy(text: str) -> str:
    """Undo the spacing decoding puts around every punctuation mark ("04 / 2015", "[ name ]", "( 555 )"):
    written text must read, and must reach the scrubber in the forms its rules know ("04/2015")."""
    text = re.sub(r"\s*([/\-])\s*", r"\1", text)
    text = re.sub(r"([(\[])\s+", r"\1", text)
    text = re.sub(r"\s+([)\],;:.!?%])", r"\1", text)
    return re.sub(r"(\d)([.:])\s+(\d)", r"\1\2\3", text)  # "2 . 5 cm", "10 : 30"


_MONTH = re.compile(
    r"(?i)\b(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b(?=\.?\s*\d)|(?<=\d\s)(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|"
    r"apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b"
)


def _placeholders(text: str) -> str:
    """Case the lower-case vocabulary cannot write, where the scrubber's rules look for it: placeholders
    ("[name]" -> "[NAME]") and month names beside a number ("june 05, 2016" -> "June 05, 2016")."""
    text = re.sub(r"\[([A-Za-z]+)\]", lambda m: f"[{m.group(1).upper()}]", text)
    return _MONTH.sub(lambda m: m.group(0).capitalize(), text)


def _sentence_case(text: str) -> str:
    """The vocabulary is lower-case: capitalise the first letter of the text and of each sentence (after a
    full stop and a space, so "2.5 cm" stays as it is)."""
    return re.sub(r"(^|[.!?]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)
