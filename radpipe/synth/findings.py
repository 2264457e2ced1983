"""The per-study finding vector that both the pixels and the report are drawn from."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class State(IntEnum):
    """A finding's truth in a study, in the labeller's coding."""

    ABSENT = 0
    PRESENT = 1
    UNCERTAIN = -1  # drawn faint, reported with a hedge ("possible small effusion")


# Finding -> prevalence; names are the report label struct's names.
PREVALENCE: dict[str, float] = {
    "cardiomegaly": 0.30,
    "pleural_effusion": 0.30,
    "pneumothorax": 0.20,
    "lung_lesion": 0.25,
    "consolidation": 0.30,
    "support_devices": 0.25,
}
UNCERTAIN_FRACTION = 0.12


@dataclass(frozen=True)
class Findings:
    """Finding name -> State for one study, plus where (side) lateralised findings sit."""

    states: dict[str, State]
    # 0 = image left (patient right), 1 = image right; per finding, for drawing and for the report.
    sides: dict[str, int]

    def present(self, name: str) -> bool:
        return self.states[name] is State.PRESENT

    def shown(self, name: str) -> bool:
        """Drawn in the pixels (present, or faint when uncertain)."""
        return self.states[name] is not State.ABSENT


def sample_findings(rng: np.random.Generator) -> Findings:
    states: dict[str, State] = {}
    for name, prevalence in PREVALENCE.items():
        if rng.random() >= prevalence:
            states[name] = State.ABSENT
        elif name != "support_devices" and rng.random() < UNCERTAIN_FRACTION:
            states[name] = State.UNCERTAIN
        else:
            states[name] = State.PRESENT
    sides = {name: int(rng.integers(0, 2)) for name in PREVALENCE}
    return Findings(states, sides)
