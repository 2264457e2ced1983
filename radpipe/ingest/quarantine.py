"""Why an input was rejected: a stage, a reason code (radpipe/dataset/reasons.py), and a detail that never
carries PHI."""

from __future__ import annotations

import re
from dataclasses import dataclass

from radpipe.dataset.reasons import Reason, Stage

__all__ = ["Quarantined", "Reason", "Stage", "safe_detail"]


@dataclass(frozen=True)
class Quarantined:
    """One quarantine/ row (before the batch id is attached)."""

    source_key: str
    stage: Stage
    reason: Reason
    detail: str
    position: int = 0

    def row(self) -> dict[str, object]:
        return {
            "source_key": self.source_key,
            "stage": self.stage.value,
            "reason": self.reason.value,
            "detail": self.detail,
            "position": self.position,
        }


_UID_LIKE = re.compile(r"\b\d+(?:\.\d+){3,}\b")
_LONG_NUMBER = re.compile(r"\d{5,}")


def safe_detail(message: str, source_path: str) -> str:
    """Strip anything identifying from a library's message: the path, its parts, UIDs, long numbers."""
    text = message
    parts = [p for p in re.split(r"[/\\]", source_path) if len(p) > 2]
    for part in sorted({source_path, *parts}, key=len, reverse=True):
        text = text.replace(part, "<path>")
    text = _UID_LIKE.sub("<uid>", text)
    text = _LONG_NUMBER.sub("<n>", text)
    return text[:200]
