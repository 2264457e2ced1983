"""Which language a report is written in: its share of each language's common words (pure, no model).

Stems are listed too, so that stemmed corpora (PadChest's reports are stemmed Spanish) are recognised.
A report too short or too mixed to tell is `und`: labelled by no rules, counted, never silently normal.
"""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[a-z]+")
# Function words and the commonest chest-report words of each language (unaccented, lower case).
MARKERS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "the of and is are with no there or in on to without seen lungs lung heart normal pleural effusion "
        "clear size right left chest findings impression which this that be has have not stable acute".split()
    ),
    "es": frozenset(
        "de la el los las y con sin en del se por que una un es son al lo su no hay "
        "pulmonar pulmonares derrame derram normal sign signos cambi cambios cardi silueta siluet sen senos "
        "costofren libr libres hallazg patolog cronic aument dens torax izquierd derech bilateral derecho derecha "
        "izquierdo izquierda cardiomegalia neumonia atelectasia consolidacion nodulo engrosamiento "
        # PadChest's stems
        "hili aort elong elongacion escoliosis dors dorsal patron intersticial engros apical pinzamient atelectasi "
        "bas pulmon parenquim respect estudi previ apreci infiltr condens relev signific ict siluet cardiomegali "
        "epoc cifosis hallazg sin ni".split()
    ),
}
# A language needs this many marker words, and this share of all markers found, to be named.
MIN_MARKERS = 2
MIN_SHARE = 0.6


def detect_language(text: str) -> str:
    """'en', 'es' or 'und'."""
    folded = "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")
    words = _WORD.findall(folded)
    counts = {language: sum(word in markers for word in words) for language, markers in MARKERS.items()}
    total = sum(counts.values())
    best = max(counts, key=lambda language: counts[language])
    if counts[best] >= MIN_MARKERS and counts[best] >= MIN_SHARE * total:
        return best
    return "und"
