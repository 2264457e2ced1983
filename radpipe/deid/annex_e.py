"""The PS3.15 Annex E confidentiality profile as data: tag -> action, plus the options radpipe applies."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from importlib import resources

from pydicom.tag import BaseTag


class Action(StrEnum):
    """Annex E action codes (PS3.15 Table E.1-1), and the combinations the table uses."""

    D = "D"  # replace with a non-zero-length dummy (here: a keyed pseudonym where one exists)
    Z = "Z"  # replace with a zero-length value
    X = "X"  # remove
    K = "K"  # keep
    C = "C"  # clean: keep the meaning, remove identifying content (dates shifted, text scrubbed)
    U = "U"  # replace UID with a keyed, consistent UID
    Z_D = "Z/D"
    X_Z = "X/Z"
    X_D = "X/D"
    X_Z_D = "X/Z/D"
    X_Z_U = "X/Z/U*"


# Combined codes allow either action depending on the IOD's attribute type, which a de-identifier
# working on arbitrary objects cannot know. radpipe takes the most protective choice that keeps the
# object readable: remove (X) whenever removal is allowed, else zero-length (Z).
RESOLVED: dict[Action, Action] = {
    Action.Z_D: Action.Z,
    Action.X_Z: Action.X,
    Action.X_D: Action.X,
    Action.X_Z_D: Action.X,
    Action.X_Z_U: Action.X,
}

# Option "Clean Descriptors" (113105): these keep their value after the text scrubber has run,
# rather than being removed; a model learns from a series description, not from who typed it.
CLEAN_DESCRIPTORS: frozenset[str] = frozenset(
    {
        "StudyDescription",
        "SeriesDescription",
        "ProtocolName",
        "PerformedProcedureStepDescription",
        "RequestedProcedureDescription",
        "ScheduledProcedureStepDescription",
        "AcquisitionDeviceProcessingDescription",
        "DerivationDescription",
        "ImageComments",
        "ReasonForTheRequestedProcedure",
        "AdmittingDiagnosesDescription",
        "ContrastBolusAgent",
        "CommentsOnThePerformedProcedureStep",
        "StudyComments",
        "VisitComments",
    }
)


@dataclass(frozen=True)
class AnnexE:
    """Exact tags and masked (repeating-group) tags with their actions."""

    exact: dict[int, Action]
    masked: tuple[tuple[int, int, Action], ...] = field(default=())  # (value, mask, action)

    def action(self, tag: BaseTag | int) -> Action | None:
        """The table's action for a tag, or None when Annex E lists it not (it is kept)."""
        tag = int(tag)
        found = self.exact.get(tag)
        if found is not None:
            return found
        for value, mask, action in self.masked:
            if tag & mask == value:
                return action
        return None


def _parse_tag(text: str) -> tuple[int, int]:
    """'60xx3000' -> (value 0x60003000, mask 0xFF00FFFF)."""
    value = int(text.replace("x", "0"), 16)
    mask = int("".join("0" if c == "x" else "F" for c in text), 16)
    return value, mask


@lru_cache(maxsize=1)
def basic_profile() -> AnnexE:
    """The Basic Application Level Confidentiality Profile shipped in annex_e_basic.csv."""
    text = resources.files("radpipe.deid").joinpath("annex_e_basic.csv").read_text()
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    exact: dict[int, Action] = {}
    masked: list[tuple[int, int, Action]] = []
    for row in rows:
        value, mask = _parse_tag(row["tag"])
        action = Action(row["action"])
        if mask == 0xFFFFFFFF:
            exact[value] = action
        else:
            masked.append((value, mask, action))
    return AnnexE(exact, tuple(masked))
