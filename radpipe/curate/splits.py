"""Patient-level splits from a keyed hash: a patient's split never changes as the archive grows."""

from __future__ import annotations

from dataclasses import dataclass

from radpipe.deid.pseudonym import Pseudonymizer
from radpipe.errors import ConfigError

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitFractions:
    """Shares of patients per split; they must add up to 1."""

    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1

    def __post_init__(self) -> None:
        values = (self.train, self.validation, self.test)
        if any(v < 0 for v in values) or abs(sum(values) - 1.0) > 1e-9:
            raise ConfigError(f"split fractions must be >= 0 and add up to 1, got {values}")


def assign_split(patient_pseudonym: str, pseudonymizer: Pseudonymizer, fractions: SplitFractions) -> str:
    """The split of one patient: a uniform number from a keyed hash, cut by the fractions."""
    raw = int.from_bytes(pseudonymizer.digest("patient_id", "split\x00" + patient_pseudonym)[:8], "big")
    position = raw / 2**64
    if position < fractions.train:
        return "train"
    if position < fractions.train + fractions.validation:
        return "validation"
    return "test"
