"""A rule-based CheXpert-style labeller with negation and uncertainty (rules in label_rules.py)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from radpipe.reports import label_rules as rules
from radpipe.reports.label_rules_es import SPANISH


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


# Periods that do not end a sentence: abbreviations ("vs.", "Dr.") and decimals ("2.5 cm").
_ABBREVIATION = re.compile(r"(?i)\b(?:vs|e\.g|i\.e|dr|mr|mrs|ms|approx|cf)\.(?=\s+[a-z0-9])|\b(?:vs|e\.g|i\.e)\.")
_SENTENCE_END = re.compile(r"(?<!\d)\.|\.(?!\d)|[;\n]")


class Labeler:
    """CheXpert-style labels from one language's rule set, with negation and uncertainty."""

    def __init__(self, rule_set: rules.RuleSet, fold_accents: bool = False) -> None:
        self.fold_accents = fold_accents  # Spanish rules are written unaccented (and match stemmed text)
        self.rules = tuple(
            _Compiled(r.label, _words(r.mentions), _words(r.absent_phrases) if r.absent_phrases else None)
            for r in rule_set.rules
        )
        self.pre_negation = _words(rule_set.pre_negation)
        self.pre_uncertainty = _words(rule_set.pre_uncertainty)
        self.post_negation = re.compile(r"(?i)^\W*(?:" + _alternation(rule_set.post_negation) + r")(?!\w)")
        self.post_uncertainty = re.compile(
            r"(?i)^\W*(?:\w+\W+){0,2}?(?:" + _alternation(rule_set.post_uncertainty) + r")(?!\w)"
        )
        self.breaks = _words(rule_set.scope_breaks)
        self.no_finding = _words(rule_set.no_finding)
        self.pseudo = _words(rule_set.pseudo_negation)
        self.window = rule_set.cue_window_words
        self.other = _words(rule_set.other_findings) if rule_set.other_findings else None

    def _pre_cue(self, window: str) -> Mention | None:
        """The cue nearest to the mention decides: 'no effusion, likely atelectasis' hedges atelectasis."""
        window = self.pseudo.sub(lambda match: " " * len(match.group(0)), window)
        breaks = list(self.breaks.finditer(window))
        if breaks:
            window = window[breaks[-1].end() :]
        window = " ".join(window.split()[-self.window :])
        best: tuple[int, Mention] | None = None
        for pattern, kind in ((self.pre_negation, Mention.ABSENT), (self.pre_uncertainty, Mention.UNCERTAIN)):
            for match in pattern.finditer(window):
                # Ties on end position (e.g. "no" vs "no definite") go to the longer, hedging cue.
                candidate = (match.end(), kind)
                if best is None or candidate[0] > best[0] or (candidate[0] == best[0] and kind is Mention.UNCERTAIN):
                    best = candidate
        return best[1] if best else None

    def _classify(self, sentence: str, start: int, end: int) -> Mention:
        after = sentence[end:]
        breaks = self.breaks.search(after)
        after = after[: breaks.start()] if breaks else after
        if self.post_uncertainty.search(after):
            return Mention.UNCERTAIN
        if self.post_negation.search(after):
            return Mention.ABSENT
        cue = self._pre_cue(sentence[:start])
        return Mention.PRESENT if cue is None else cue

    def __call__(self, text: str) -> dict[str, int | None]:
        found: dict[str, set[Mention]] = {label: set() for label in rules.LABELS}
        if self.fold_accents:
            text = fold_accents(text)
        text = _ABBREVIATION.sub(lambda match: match.group(0).replace(".", ""), text)
        for sentence in _SENTENCE_END.split(text):
            if sentence.strip():
                self._mentions(sentence, found)
        return _labels(found)

    def _mentions(self, sentence: str, found: dict[str, set[Mention]]) -> None:
        """Each finding's mentions in one sentence, and what they say of "no finding"."""
        for rule in self.rules:
            absent_spans = []
            if rule.absent is not None:
                for match in rule.absent.finditer(sentence):
                    found[rule.label].add(Mention.ABSENT)
                    absent_spans.append(match.span())
            for match in rule.mention.finditer(sentence):
                if not any(a <= match.start() < b for a, b in absent_spans):
                    found[rule.label].add(self._classify(sentence, match.start(), match.end()))
        if self.no_finding.search(sentence):
            found["no_finding"].add(Mention.PRESENT)
        if self.other is not None:
            for match in self.other.finditer(sentence):
                if self._classify(sentence, match.start(), match.end()) is not Mention.ABSENT:
                    found["no_finding"].add(Mention.UNCERTAIN)  # something abnormal this labeller has no name for


def _labels(found: dict[str, set[Mention]]) -> dict[str, int | None]:
    """The strongest mention of each finding (present > uncertain > absent), then CheXpert's "No Finding"."""
    labels: dict[str, int | None] = {}
    for label, mentions in found.items():
        strongest = next((m for m in (Mention.PRESENT, Mention.UNCERTAIN, Mention.ABSENT) if m in mentions), None)
        labels[label] = None if strongest is None else int(strongest)
    pathologies = [label for label in rules.LABELS if label not in ("no_finding", "support_devices")]
    # CheXpert: "No Finding" holds when no pathology is present or uncertain; otherwise it is not set.
    abnormal = any(labels[label] in (1, -1) for label in pathologies) or Mention.UNCERTAIN in found["no_finding"]
    labels["no_finding"] = None if abnormal else 1
    return labels


def fold_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


_LABELERS = {"en": Labeler(rules.ENGLISH), "es": Labeler(SPANISH, fold_accents=True)}
LABELLED_LANGUAGES = frozenset(_LABELERS)


def label_report(text: str, language: str = "en") -> dict[str, int | None]:
    """CheXpert-style labels for one report: 1 present, 0 absent, -1 uncertain, None not mentioned.

    A language radpipe has no rules for gets every label None (never a silent no_finding).
    """
    labeler = _LABELERS.get(language)
    if labeler is None:
        return dict.fromkeys(rules.LABELS)
    return labeler(text)
