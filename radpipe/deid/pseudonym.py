"""Keyed (HMAC-SHA256) pseudonyms: stable across tables and runs, not reversible without the key."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from enum import StrEnum


class IdentifierKind(StrEnum):
    """What an identifier is; each kind has its own HMAC domain so equal strings do not collide."""

    PATIENT_ID = "patient_id"
    ACCESSION_NUMBER = "accession_number"
    UID = "uid"
    SOURCE_KEY = "source_key"
    REPORT_ID = "report_id"


@dataclass(frozen=True)
class Pseudonymizer:
    """Maps source identifiers to pseudonyms with one secret key."""

    key: bytes = field(repr=False)

    def digest(self, kind: IdentifierKind | str, value: str) -> bytes:
        domain = IdentifierKind(kind).value
        return hmac.new(self.key, f"{domain}\x00{value.strip()}".encode(), hashlib.sha256).digest()

    def pseudonym(self, kind: IdentifierKind | str, value: str) -> str:
        """The pseudonym of one identifier; UIDs map into the 2.25 root so they stay valid UIDs."""
        kind = IdentifierKind(kind)
        if kind is IdentifierKind.UID:
            return self.uid(value)
        # Accession numbers are SH (16 characters at most); 64 bits cannot collide in any archive.
        length = 16 if kind is IdentifierKind.ACCESSION_NUMBER else 24
        return self.digest(kind, value).hex()[:length]

    def stand_in_patient(self, study_uid_pseudonym: str) -> str:
        """The patient pseudonym of a study whose source names no patient: the study is its own patient,
        so splits never put two such studies together by an empty ID (nor one of them in two splits)."""
        return self.pseudonym(IdentifierKind.PATIENT_ID, "\x00no patient id, study\x00" + study_uid_pseudonym)

    def uid(self, value: str) -> str:
        # 2.25.<decimal of 128 bits> is the ISO/ITU root for UUID-derived UIDs; <= 64 characters.
        number = int.from_bytes(self.digest(IdentifierKind.UID, value)[:16], "big")
        return f"2.25.{number}"

    def source_key(self, path: str) -> str:
        """A keyed hash of a source path: tables and logs show this, never the path."""
        return self.digest(IdentifierKind.SOURCE_KEY, path).hex()[:32]

    def date_shift_days(self, patient_id: str) -> int:
        """A secret per-patient shift (back 1..3650 days), equal across studies so intervals survive."""
        raw = int.from_bytes(self.digest("patient_id", "date-shift\x00" + patient_id)[:4], "big")
        return -(1 + raw % 3650)
