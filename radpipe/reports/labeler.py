"""A rule-based CheXpert-style labeller with negation and uncertainty (rules in label_rules.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from radpipe.reports import label_rules as rules


class Mention(IntEnum):
    """CheXpert's coding of one observation."""

    ABSENT = 0
    PRESENT = 1
    UNCERTAIN = -1


def _alternation(phrases: Iterable[str]) -> str:
    return "|".join(sorted(phrases, key=len, reverse=True))


def _words(phrases: Iterable[str]) -> re.Pattern[str]:
    return re.compile(r"(?i)(?<![\w-])(?:" + _alternation(phrases) + r")(?![\w-])")


@dataclass(frozen=True)
class _Compiled:
    label: str
    mention: re.Pattern[str]
    absent: re.Pattern[str] | None


_RULES = tuple(
    _Compiled(r.label, _words(r.mentions), _words(r.absent_phrases) if r.absent_phrases else None) for r in rules.RULES
)
_PRE_NEG = _words(rules.PRE_NEGATION)
_PRE_UNC = _words(rules.PRE_UNCERTAINTY)
_POST_NEG = re.compile(r"(?i)^\W*(?:" + _alternation(rules.POST_NEGATION) + r")(?!\w)")
_POST_UNC = re.compile(r"(?i)^\W*(?:\w+\W+){0,2}?(?:" + _alternation(rules.POST_UNCERTAINTY) + r")(?!\w)")
_BREAK = _words(rules.SCOPE_BREAKS)
_NO_FINDING = _words(rules.NO_FINDING_PHRASES)
_PSEUDO = _words(rules.PSEUDO_NEGATION)
# Periods that do not end a sentence: abbreviations ("vs.", "Dr.") and decimals ("2.5 cm").
_ABBREVIATION = re.compile(r"(?i)\b(?:vs|e\.g|i\.e|dr|mr|mrs|ms|approx|cf)\.(?=\s+[a-z0-9])|\b(?:vs|e\.g|i\.e)\.")
_SENTENCE_END = re.compile(r"(?<!\d)\.|\.(?!\d)|[;\n]")


def _pre_cue(window: str) -> Mention | None:
    """The cue nearest to the mention decides: 'no effusion, likely atelectasis' hedges atelectasis."""
    window = _PSEUDO.sub(lambda match: " " * len(match.group(0)), window)
    breaks = list(_BREAK.finditer(window))
    if breaks:
        window = window[breaks[-1].end() :]
    words = window.split()
    window = " ".join(words[-rules.CUE_WINDOW_WORDS :])
    best: tuple[int, Mention] | None = None
    for pattern, kind in ((_PRE_NEG, Mention.ABSENT), (_PRE_UNC, Mention.UNCERTAIN)):
        for match in pattern.finditer(window):
            # Ties on end position (e.g. "no" vs "no definite") go to the longer, hedging cue.
            candidate = (match.end(), kind)
            if best is None or candidate[0] > best[0] or (candidate[0] == best[0] and kind is Mention.UNCERTAIN):
                best = candidate
    return best[1] if best else None


def _classify(sentence: str, start: int, end: int) -> Mention:
    after = sentence[end:]
    breaks = _BREAK.search(after)
    after = after[: breaks.start()] if breaks else after
    if _POST_UNC.search(after):
        return Mention.UNCERTAIN
    if _POST_NEG.search(after):
        return Mention.ABSENT
    cue = _pre_cue(sentence[:start])
    return Mention.PRESENT if cue is None else cue


def label_report(text: str) -> dict[str, int | None]:
    """CheXpert-style labels for one report: 1 present, 0 absent, -1 uncertain, None not mentioned."""
    found: dict[str, set[Mention]] = {label: set() for label in rules.LABELS}
    text = _ABBREVIATION.sub(lambda match: match.group(0).replace(".", ""), text)
    for sentence in _SENTENCE_END.split(text):
        if not sentence.strip():
            continue
        for rule in _RULES:
            absent_spans = []
            if rule.absent is not None:
                for match in rule.absent.finditer(sentence):
                    found[rule.label].add(Mention.ABSENT)
                    absent_spans.append(match.span())
            for match in rule.mention.finditer(sentence):
                if any(a <= match.start() < b for a, b in absent_spans):
                    continue
                found[rule.label].add(_classify(sentence, match.start(), match.end()))
        if _NO_FINDING.search(sentence):
            found["no_finding"].add(Mention.PRESENT)
    labels: dict[str, int | None] = {}
    for label, mentions in found.items():
        if Mention.PRESENT in mentions:
            labels[label] = int(Mention.PRESENT)
        elif Mention.UNCERTAIN in mentions:
            labels[label] = int(Mention.UNCERTAIN)
        elif Mention.ABSENT in mentions:
            labels[label] = int(Mention.ABSENT)
        else:
            labels[label] = None
    pathologies = [label for label in rules.LABELS if label not in ("no_finding", "support_devices")]
    # CheXpert: "No Finding" holds when no pathology is present or uncertain; otherwise it is not set.
    if any(labels[label] in (1, -1) for label in pathologies):
        labels["no_finding"] = None
    else:
        labels["no_finding"] = 1
    return labels
