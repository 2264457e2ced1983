"""Labeller rules as data: what names each observation, and which cues negate or hedge it.

Extend by adding phrases here; patterns are regular expressions matched case-insensitively on
word boundaries inside one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

LABELS: tuple[str, ...] = (
    "no_finding",
    "enlarged_cardiomediastinum",
    "cardiomegaly",
    "lung_opacity",
    "lung_lesion",
    "edema",
    "consolidation",
    "pneumonia",
    "atelectasis",
    "pneumothorax",
    "pleural_effusion",
    "pleural_other",
    "fracture",
    "support_devices",
)


@dataclass(frozen=True)
class RuleSet:
    """One language's labeller: observation rules and the cues around them (see radpipe/reports/labeler.py)."""

    rules: tuple[LabelRule, ...]
    no_finding: tuple[str, ...]
    pre_negation: tuple[str, ...]
    pseudo_negation: tuple[str, ...]
    pre_uncertainty: tuple[str, ...]
    post_negation: tuple[str, ...]
    post_uncertainty: tuple[str, ...]
    scope_breaks: tuple[str, ...]
    cue_window_words: int = 10
    # Findings outside the fourteen observations ("COPD signs", "scoliosis"): one not negated means "not normal".
    other_findings: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelRule:
    """Phrases that mention an observation, and phrases that state its absence outright."""

    label: str
    mentions: tuple[str, ...]
    # Whole phrases meaning "absent" with no negation cue ("heart size is normal").
    absent_phrases: tuple[str, ...] = ()


RULES: tuple[LabelRule, ...] = (
    LabelRule(
        "enlarged_cardiomediastinum",
        (
            r"widened mediastinum",
            r"mediastinal widening",
            r"enlarged cardiomediastinal silhouette",
            r"cardiomediastinal silhouette is (?:enlarged|widened)",
        ),
        (
            r"cardiomediastinal silhouette is (?:normal|within normal limits|unremarkable)",
            r"normal cardiomediastinal silhouette",
        ),
    ),
    LabelRule(
        "cardiomegaly",
        (
            r"cardiomegaly",
            r"enlarged (?:heart|cardiac silhouette)",
            r"(?:heart|cardiac silhouette) is (?:\w+ly )?enlarged",
            r"enlargement of the (?:heart|cardiac silhouette)",
            r"heart size is (?:\w+ly )?(?:enlarged|increased)",
        ),
        (
            r"heart size is (?:normal|within normal limits)",
            r"normal heart size",
            r"(?:heart|cardiac silhouette) is (?:normal in size|not enlarged)",
        ),
    ),
    LabelRule(
        "lung_opacity",
        (r"opacit(?:y|ies)", r"airspace disease", r"infiltrates?", r"hazy density", r"patchy density"),
        (r"lungs are clear", r"clear lungs"),
    ),
    LabelRule(
        "lung_lesion",
        (r"nodules?", r"mass(?:es)?", r"lesions?", r"nodular density"),
    ),
    LabelRule("edema", (r"(?:pulmonary )?edema", r"vascular congestion", r"interstitial prominence")),
    LabelRule("consolidation", (r"consolidations?", r"consolidative"), (r"lungs are clear", r"clear lungs")),
    LabelRule("pneumonia", (r"pneumonia", r"infectious process")),
    LabelRule(
        "atelectasis",
        (r"atelectasis", r"atelectatic", r"(?:lobar|lung|lobe) collapse", r"collapse of the (?:\w+ )*?(?:lung|lobe)"),
    ),
    LabelRule("pneumothorax", (r"pneumothora(?:x|ces)", r"pleural air"), ()),
    LabelRule(
        "pleural_effusion",
        (
            r"(?<!pericardial )(?<!joint )(?<!pericardial pleural )(?:pleural )?effusions?",
            r"pleural fluid",
            r"blunting of the (?:\w+ )?costophrenic angles?",
            r"costophrenic angles? (?:is|are) blunted",
            r"fluid level",
        ),
        (r"costophrenic angles are sharp", r"sharp costophrenic angles"),
    ),
    LabelRule("pleural_other", (r"pleural thickening", r"pleural plaques?", r"fibrothorax")),
    LabelRule("fracture", (r"fractures?", r"fractured")),
    LabelRule(
        "support_devices",
        (
            r"(?:endotracheal|enteric|nasogastric|chest|feeding) tube",
            r"central (?:venous )?(?:line|catheter)",
            r"picc(?: line)?",
            r"pacemaker",
            r"sternotomy wires",
            r"support devices?",
            r"catheter",
            r"port-?a-?cath",
            r"line tip",
            r"tube tip",
        ),
    ),
)

# Clinically normal statements that make "no_finding" explicit.
NO_FINDING_PHRASES: tuple[str, ...] = (
    r"no acute cardiopulmonary (?:process|abnormality|disease)",
    r"normal (?:chest|study|radiograph)",
    r"no acute findings?",
)

# Cues before a mention (within the sentence, not across a scope break).
PRE_NEGATION: tuple[str, ...] = (
    r"no",
    r"not",
    r"without",
    r"negative for",
    r"free of",
    r"no evidence of",
    r"no signs? of",
    r"absence of",
    r"resolution of",
    r"resolved",
    r"clear of",
    r"nor",
    r"neither",
    r"rather than",
    r"removal of",
    r"removed",
)
# Phrases that start like a negation but say that something persists ("no change in the effusion").
PSEUDO_NEGATION: tuple[str, ...] = (
    r"no (?:significant |substantial )?(?:interval )?change in",
    r"no (?:significant )?(?:interval )?(?:increase|decrease) in",
    r"not (?:significantly )?changed",
)
PRE_UNCERTAINTY: tuple[str, ...] = (
    r"possible",
    r"possibly",
    r"probable",
    r"probably",
    r"may",
    r"might",
    r"could",
    r"cannot exclude",
    r"can ?not be excluded",
    r"cannot rule out",
    r"can ?not rule out",
    r"suspicious for",
    r"suspected",
    r"suggestive of",
    r"concerning for",
    r"questionable",
    r"equivocal",
    r"likely",
    r"versus",
    r"differential",
    r"consider",
    r"borderline",
    r"vs\.?",
    r"question of",
    r"r/o",
    r"rule out",
    r"not excluded",
    r"no definite",
    r"could not exclude",
    r"can ?not exclude",
    # "density without volume loss favours consolidation": a hedge, nearer the finding than the negation
    r"favou?rs?",
    r"favou?ring",
)
# Cues after a mention.
POST_NEGATION: tuple[str, ...] = (
    r"(?:is|are) not (?:seen|identified|present|visualized|appreciated)",
    r"(?:is|are|has|have) resolved",
    r"(?:is|are) absent",
    r"not (?:seen|identified|present)(?! (?:on|in) (?:the )?(?:prior|previous))",
    r"(?:has|have) cleared",
    r"(?:is|are) no longer (?:seen|visualized|present|identified|evident)",
    r"(?:has|have) been removed",
)
POST_UNCERTAINTY: tuple[str, ...] = (
    r"(?:cannot|can not|could not) be (?:excluded|ruled out)",
    r"(?:is|are) not excluded",
    r"(?:is|are) (?:possible|suspected|questioned)",
    r"(?:is|are) (?:not|less) likely",
    r"versus",
    r"vs\.?",
    r"not excluded",
    r"not ruled out",
)
# Words that end a cue's reach inside a sentence.
SCOPE_BREAKS: tuple[str, ...] = (
    r"but",
    r"however",
    r"although",
    r"though",
    r"which",
    r"except",
    r"apart from",
    r"otherwise",
    r"there is",
    r"there are",
    r"with",
)
# How far back (in words) a pre-mention cue reaches.
CUE_WINDOW_WORDS = 10

ENGLISH = RuleSet(
    rules=RULES,
    no_finding=NO_FINDING_PHRASES,
    pre_negation=PRE_NEGATION,
    pseudo_negation=PSEUDO_NEGATION,
    pre_uncertainty=PRE_UNCERTAINTY,
    post_negation=POST_NEGATION,
    post_uncertainty=POST_UNCERTAINTY,
    scope_breaks=SCOPE_BREAKS,
    cue_window_words=CUE_WINDOW_WORDS,
)
