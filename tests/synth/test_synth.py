import hashlib
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from radpipe.errors import RadpipeError
from radpipe.synth import write_archive
from radpipe.synth.drawing import draw_chest
from radpipe.synth.findings import Findings, State


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_same_seed_same_archive_other_seed_other_archive(tmp_path: Path) -> None:
    write_archive(tmp_path / "a", studies=6, seed=11)
    write_archive(tmp_path / "b", studies=6, seed=11)
    write_archive(tmp_path / "c", studies=6, seed=12)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_the_archive_is_the_same_whatever_the_number_of_workers(tmp_path: Path) -> None:
    # Studies are planned in order, then drawn and written by a pool: the transfer syntax each instance takes in
    # turn, the patients CT/MR studies add and every random draw must not depend on which process wrote what.
    one = write_archive(tmp_path / "one", studies=12, seed=5, phi=True, volumes=5, workers=1)
    two = write_archive(tmp_path / "two", studies=12, seed=5, phi=True, volumes=5, workers=2)
    assert one == two
    assert one.volume_series == 5 and len(one.transfer_syntaxes) == 6
    assert _digest(tmp_path / "one") == _digest(tmp_path / "two")


def test_fewer_than_one_worker_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(RadpipeError, match="--workers must be at least 1"):
        write_archive(tmp_path, studies=1, workers=0)


def test_archive_has_the_promised_variety(archive: Path) -> None:
    files = sorted((archive / "dicom").rglob("*.dcm"))
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    syntaxes = {h.file_meta.TransferSyntaxUID.name for h in headers}
    assert len(syntaxes) == 6, syntaxes
    assert {h.PhotometricInterpretation for h in headers} == {"MONOCHROME1", "MONOCHROME2"}
    assert {h.Modality for h in headers} <= {"CR", "DX"}
    assert all(h.SyntheticData == "YES" for h in headers)
    patients = [h.PatientID for h in headers]
    studies_per_patient = {p: len({h.StudyInstanceUID for h in headers if h.PatientID == p}) for p in patients}
    assert max(studies_per_patient.values()) > 1


def test_phi_is_planted_in_headers_paths_and_reports(archive: Path) -> None:
    truth = [json.loads(line) for line in open(archive / "truth.jsonl")]
    first = next(f for f in (archive / "dicom").rglob("*.dcm"))
    header = pydicom.dcmread(first, stop_before_pixels=True)
    assert header.PatientID in str(first)  # identifiers in folder names
    assert "InstitutionName" in header and "PatientBirthDate" in header
    assert any(elem.tag.is_private for elem in header)
    reports = (archive / "reports" / "reports.jsonl").read_text()
    planted = [value for study in truth for value in study["phi"]]
    assert sum(value in reports for value in set(planted)) > 5


def test_negative_volumes_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(RadpipeError, match="--volumes must be 0 or more"):
        write_archive(tmp_path, studies=1, volumes=-1)


def _mean_in(image: np.ndarray, rows: slice, cols: slice) -> float:
    return float(image[rows, cols].mean())


@pytest.mark.parametrize(
    ("finding", "region"),
    [
        ("pleural_effusion", (slice(290, 330), slice(100, 220))),  # the patient's right lung base
        ("cardiomegaly", (slice(300, 350), slice(330, 370))),  # beside the normal heart border
        ("pneumothorax", (slice(100, 140), slice(145, 175))),  # apex of the right lung
    ],
)
def test_findings_are_visible_in_the_pixels(finding: str, region: tuple[slice, slice]) -> None:
    """With a finding drawn, its region differs clearly from the same region without it."""

    def draw(state: State, seed: int) -> np.ndarray:
        states = {
            name: State.ABSENT
            for name in (
                "cardiomegaly",
                "pleural_effusion",
                "pneumothorax",
                "lung_lesion",
                "consolidation",
                "support_devices",
            )
        }
        states[finding] = state
        sides = {name: 0 for name in states}
        return draw_chest(np.random.default_rng(seed), (512, 512), Findings(states, sides), "PA")

    with_finding = [_mean_in(draw(State.PRESENT, s), *region) for s in range(8)]
    without = [_mean_in(draw(State.ABSENT, s), *region) for s in range(8)]
    gap = abs(np.mean(with_finding) - np.mean(without))
    assert gap > 5 * (np.std(with_finding) + np.std(without) + 1e-3) / 2, (with_finding, without)
