"""Fake people, places and identifiers for the synthetic archive (realistic under --phi)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

FIRST_NAMES = (
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Amara",
    "Hiroshi",
    "Fatima",
    "Giulia",
    "Sven",
    "Olga",
    "Mateo",
    "Priya",
    "Kwame",
    "Ingrid",
)
LAST_NAMES = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Okafor",
    "Tanaka",
    "Haddad",
    "Rossi",
    "Lindqvist",
    "Petrova",
    "Fernandez",
    "Sharma",
    "Mensah",
    "Berg",
)
STREETS = ("Maple Avenue", "Oak Street", "Pine Road", "Cedar Lane", "Elm Drive", "Birch Court", "Harbor View")
CITIES = ("Springfield, IL 62704", "Riverside, CA 92501", "Fairview, TN 37062", "Madison, WI 53703")
INSTITUTIONS = (
    "St. Mary's General Hospital",
    "Lakeside University Medical Center",
    "Northview Regional Clinic",
)


@dataclass(frozen=True)
class Patient:
    """Source identifiers of one synthetic patient (what de-identification must remove)."""

    patient_id: str
    name: str  # DICOM PN: Family^Given
    birth_date: str  # YYYYMMDD
    address: str
    phone: str
    institution: str
    referring_physician: str

    @property
    def display_name(self) -> str:
        family, given = self.name.split("^")
        return f"{given} {family}"

    def folder_name(self, with_phi: bool, index: int) -> str:
        if with_phi:
            family, given = self.name.split("^")
            return f"{family.upper()}_{given.upper()}_{self.patient_id}"
        return f"patient_{index:05d}"


def make_patient(rng: np.random.Generator, index: int, with_phi: bool) -> Patient:
    pick = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
    if not with_phi:
        return Patient(
            patient_id=f"SYN{index:06d}",
            name=f"SYNTHETIC^PATIENT{index:05d}",
            birth_date="",
            address="",
            phone="",
            institution="",
            referring_physician="",
        )
    birth = dt.date(1930, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 75)))
    return Patient(
        patient_id=f"MRN{int(rng.integers(1_000_000, 9_999_999))}",
        name=f"{pick(LAST_NAMES)}^{pick(FIRST_NAMES)}",
        birth_date=birth.strftime("%Y%m%d"),
        address=f"{int(rng.integers(1, 9999))} {pick(STREETS)}, {pick(CITIES)}",
        phone=f"({int(rng.integers(200, 999))}) 555-{int(rng.integers(1000, 9999))}",
        institution=pick(INSTITUTIONS),
        referring_physician=f"{pick(LAST_NAMES)}^{pick(FIRST_NAMES)}^^Dr.",
    )


def phi_sentence(
    rng: np.random.Generator, patient: Patient, study_date: dt.date, accession: str
) -> tuple[str, list[str]]:
    """A line of report text carrying identifiers, as real reports do, and the identifiers planted."""
    physician = patient.referring_physician.split("^")[0]
    family, given = patient.name.split("^")
    dob = f"{patient.birth_date[4:6]}/{patient.birth_date[6:]}/{patient.birth_date[:4]}"
    email = f"{given.lower()}.{family.lower()}@example.org"
    age = 90 + int(rng.integers(0, 9))
    options: tuple[tuple[str, list[str]], ...] = (
        (
            f"Findings discussed with Dr. {physician} by telephone on {study_date:%m/%d/%Y}.",
            [physician, f"{study_date:%m/%d/%Y}"],
        ),
        (f"Patient {given} {family}, MRN {patient.patient_id}, DOB {dob}.", [given, family, patient.patient_id, dob]),
        (
            f"Comparison is made with the outside study from {patient.institution}. Call {patient.phone}.",
            [patient.institution, patient.phone],
        ),
        (f"{age}-year-old, lives at {patient.address}.", [str(age), patient.address]),
        (f"Report sent to {email} on {study_date:%B %d, %Y}.", [email, f"{study_date:%B %d, %Y}"]),
        (f"{family}, {given} seen for accession {accession}.", [family, given, accession]),
        (f"Results called to Mrs. {family} at {patient.phone}.", [family, patient.phone]),
    )
    sentence, planted = options[int(rng.integers(len(options)))]
    return sentence, planted
