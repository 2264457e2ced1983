"""`radpipe synth --volumes`: CT/MR phantom series whose voxels show what their reports say, in real layouts."""

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest
from scipy import ndimage

from radpipe.reports.labeler import label_report
from radpipe.reports.sections import split_sections
from radpipe.synth import write_archive
from radpipe.synth.findings import PREVALENCE, Findings, State
from radpipe.synth.phantom import Grid, draw_tissues, render_ct, render_mr
from radpipe.synth.series import SeriesCase, plan_series

VOLUMES = 8
SEED = 5  # a seed whose eight studies show every finding present at least once

INF = float("inf")
# Intensity bands a reader of the images would use; HU for CT, the phantom's documented T2-like scale for MR.
CT_BANDS = {
    "air": (-INF, -975),
    "lung": (-975, -500),
    "fat": (-500, -30),
    "fluid": (-30, 24),
    "soft": (24, 300),
    "bone": (300, 1200),
    "device": (1200, INF),
}
MR_BANDS = {
    "air": (-INF, 35),
    "lung": (35, 110),
    "bone": (110, 225),
    "soft": (225, 520),
    "fat": (520, 900),
    "fluid": (900, INF),
}
CUBE = np.ones((3, 3, 3), bool)
CARDIOTHORACIC_LIMIT = 0.5  # heart width over the width of the aerated chest, as on a radiograph


@pytest.fixture(scope="module")
def volume_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("volumes")
    write_archive(out, studies=2, seed=SEED, volumes=VOLUMES)
    return out


def _series_files(archive: Path) -> dict[str, list[Path]]:
    files: dict[str, list[Path]] = {}
    for path in sorted((archive / "dicom").rglob("*.dcm")):
        header = pydicom.dcmread(path, stop_before_pixels=True)
        if header.Modality in ("CT", "MR"):
            files.setdefault(header.SeriesInstanceUID, []).append(path)
    return files


def _manifest(archive: Path) -> dict:
    return json.loads((archive / "volumes_manifest.json").read_text())


def _read_volume(paths: list[Path]) -> tuple[np.ndarray, tuple[float, float, float], list[float]]:
    """(values after the modality LUT, spacing, z of each slice), slices sorted by position, one per position."""
    slices: dict[float, np.ndarray] = {}
    for path in paths:
        ds = pydicom.dcmread(path)
        if "PerFrameFunctionalGroupsSequence" in ds:
            shared = ds.SharedFunctionalGroupsSequence[0]
            transform = shared.PixelValueTransformationSequence[0]
            spacing = [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing]
            frames = ds.pixel_array * float(transform.RescaleSlope) + float(transform.RescaleIntercept)
            for frame, item in zip(frames, ds.PerFrameFunctionalGroupsSequence, strict=True):
                slices.setdefault(float(item.PlanePositionSequence[0].ImagePositionPatient[2]), frame)
        else:
            spacing = [float(v) for v in ds.PixelSpacing]
            values = ds.pixel_array * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
            slices.setdefault(float(ds.ImagePositionPatient[2]), values)
    z = sorted(slices)
    step = float(np.median(np.diff(z)))
    return np.stack([slices[k] for k in z]).astype(np.float32), (step, spacing[0], spacing[1]), z


def _drop_specks(mask: np.ndarray, smallest: int = 4) -> np.ndarray:
    labels, count = ndimage.label(mask, CUBE)
    if not count:
        return mask
    keep = np.bincount(labels.ravel()) >= smallest
    keep[0] = False
    return keep[labels]


def _read_findings(volume: np.ndarray, spacing: tuple[float, float, float], bands: dict) -> dict[str, bool | None]:
    """What a reader sees in the voxels: True/False per finding, None for a borderline heart."""
    band = {name: (volume >= low) & (volume < high) for name, (low, high) in bands.items()}
    body = np.stack([ndimage.binary_fill_holes(~air) for air in band["air"]])
    labels, _ = ndimage.label(body, CUBE)
    body = labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
    air = _drop_specks(body & band["air"])
    lung = _drop_specks(body & band["lung"])
    fluid = _drop_specks(body & band["fluid"])
    cc = float(np.prod(spacing)) / 1000
    # Soft tissue touching aerated lung is a finding (the phantom keeps heart and chest wall off the lung):
    # wrapped all round by lung it is a nodule, else airspace consolidation reaching the pleura.
    soft, _ = ndimage.label(body & band["soft"], CUBE)
    lesion = consolidation = 0
    heart = (0, 0)  # (voxels, width in columns) of the largest soft structure off the lung and not the wall
    for index, box in enumerate(ndimage.find_objects(soft), start=1):
        grown = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
        part = soft[grown] == index
        shell = ndimage.binary_dilation(part, CUBE) & ~part
        touching = int((shell & lung[grown]).sum())
        if touching and touching >= 0.9 * shell.sum():
            lesion += int(part.sum())
        elif touching:
            consolidation += int(part.sum())
        elif box[0].stop - box[0].start < 0.9 * volume.shape[0] and part.sum() > heart[0]:
            heart = (int(part.sum()), box[2].stop - box[2].start)
    aerated = np.flatnonzero((lung | air).any(axis=(0, 1)))
    ratio = heart[1] / (aerated[-1] - aerated[0] + 1)
    return {
        "lung_lesion": lesion > 0,
        "consolidation": consolidation > 0,
        "pleural_effusion": fluid.sum() * cc > 1.0,
        "pneumothorax": air.sum() * cc > 1.0,
        "cardiomegaly": None if abs(ratio - CARDIOTHORACIC_LIMIT) < 0.02 else bool(ratio > CARDIOTHORACIC_LIMIT),
        "support_devices": bool(band["device"].any()) if "device" in band else False,
    }


def _labels_by_study(archive: Path) -> dict[str, dict[str, int | None]]:
    """Report labels as ingest derives them (findings, impression and preamble), keyed by accession and UID."""
    by_key = {}
    for line in open(archive / "reports" / "reports.jsonl"):
        row = json.loads(line)
        sections = split_sections(row["text"])
        labelled = " ".join(s for s in (sections.get(k) for k in ("findings", "impression", "preamble")) if s)
        for key in (row["accession_number"], row["study_instance_uid"]):
            if key:
                by_key[key] = label_report(labelled)
    return by_key


def test_every_series_shows_exactly_what_its_report_says(volume_archive: Path) -> None:
    labels = _labels_by_study(volume_archive)
    files = _series_files(volume_archive)
    assert len(files) == VOLUMES
    checked: Counter[tuple[str, bool]] = Counter()
    for paths in files.values():
        header = pydicom.dcmread(paths[0], stop_before_pixels=True)
        said = labels.get(header.AccessionNumber) or labels[header.StudyInstanceUID]
        volume, spacing, _ = _read_volume(paths)
        seen = _read_findings(volume, spacing, CT_BANDS if header.Modality == "CT" else MR_BANDS)
        for finding, visible in seen.items():
            if said[finding] == -1 or visible is None:
                continue  # hedged in the report, or a heart at the limit: either reading is fair
            expected = said[finding] == 1
            assert visible == expected, (header.Modality, finding, said[finding], seen)
            checked[(finding, expected)] += 1
    assert {finding for finding, present in checked if present} == set(PREVALENCE), checked


@pytest.mark.parametrize(
    ("finding", "modality"),
    # MR studies never carry a device (archive.py): a tube would show as a signal void.
    [(f, m) for f in sorted(PREVALENCE) for m in ("CT", "MR") if (f, m) != ("support_devices", "MR")],
)
def test_each_finding_shows_alone_in_the_phantom(finding: str, modality: str) -> None:
    """One finding drawn, on either side: the reader sees it, and nothing else."""
    render, bands = (render_ct, CT_BANDS) if modality == "CT" else (render_mr, MR_BANDS)
    grid = Grid((32, 80, 80), (5.0, 4.4, 4.4))
    for side in (0, 1):
        states = {name: State.PRESENT if name == finding else State.ABSENT for name in PREVALENCE}
        rng = np.random.default_rng(side)
        tissue = draw_tissues(rng, grid, Findings(states, {name: side for name in PREVALENCE}))
        seen = _read_findings(render(rng, tissue), grid.spacing, bands)
        assert {name for name, visible in seen.items() if visible} == {finding}, (side, seen)


def test_real_layout_cases_are_where_the_manifest_says(volume_archive: Path) -> None:
    manifest = _manifest(volume_archive)
    files = _series_files(volume_archive)
    rows = {row["series_instance_uid"]: row for row in manifest["series"]}
    assert set(rows) == set(files)
    assert sorted(manifest["cases"]) == sorted(c.value for c in SeriesCase if c is not SeriesCase.STANDARD)
    for case, uid in manifest["cases"].items():
        row, paths = rows[uid], files[uid]
        assert row["case"] == case and row["modality"] == "CT" and row["files"] == len(paths)
        _, _, z = _read_volume(paths)
        headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
        spacing = row["spacing_mm"][0]
        steps = np.diff(z)
        if case == "missing_slice":
            assert len(paths) == row["positions"] - 1
            assert sorted(np.round(steps / spacing, 3).tolist()) == [1.0] * (len(steps) - 1) + [2.0]
            assert row["missing_slice_z"] not in z
        elif case == "duplicate_position":
            assert len(paths) == row["positions"] + 1
            at = Counter(float(h.ImagePositionPatient[2]) for h in headers)
            [(position, count)] = [(k, n) for k, n in at.items() if n > 1]
            assert count == 2 and position == row["duplicate_slice_z"]
            pair = [
                pydicom.dcmread(p) for p, h in zip(paths, headers, strict=True) if h.ImagePositionPatient[2] == position
            ]
            assert pair[0].SOPInstanceUID != pair[1].SOPInstanceUID
            assert not np.array_equal(pair[0].pixel_array, pair[1].pixel_array)
            assert np.allclose(steps, spacing)
        elif case == "multiframe":
            [ds] = [pydicom.dcmread(p) for p in paths]
            assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2.1"  # Enhanced CT Image Storage
            assert int(ds.NumberOfFrames) == row["positions"] == len(z) == ds.pixel_array.shape[0]
            shared = ds.SharedFunctionalGroupsSequence[0]
            assert list(shared.PlaneOrientationSequence[0].ImageOrientationPatient) == [1, 0, 0, 0, 1, 0]
            assert float(shared.PixelMeasuresSequence[0].SpacingBetweenSlices) == spacing
            assert shared.PixelValueTransformationSequence[0].RescaleType == "HU"
            assert "ImagePositionPatient" not in ds and np.allclose(steps, spacing)
        elif case == "shuffled":
            assert len(paths) == row["positions"] and np.allclose(steps, spacing)
            by_name = [float(h.ImagePositionPatient[2]) for h in headers]  # paths are sorted by name
            assert by_name != sorted(by_name) and by_name != sorted(by_name, reverse=True)
            by_number = [float(h.ImagePositionPatient[2]) for h in sorted(headers, key=lambda h: h.InstanceNumber)]
            assert by_number != sorted(by_number) and by_number != sorted(by_number, reverse=True)


def test_series_headers_carry_consistent_geometry(volume_archive: Path) -> None:
    for paths in _series_files(volume_archive).values():
        headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
        first = headers[0]
        assert len({h.FrameOfReferenceUID for h in headers}) == 1
        assert len({h.SOPInstanceUID for h in headers}) == len(headers)
        assert first.SyntheticData == "YES" and first.BodyPartExamined == "CHEST"
        if "PerFrameFunctionalGroupsSequence" in first:
            continue  # checked with the real-layout cases
        for h in headers:
            assert list(h.ImageOrientationPatient) == [1, 0, 0, 0, 1, 0]
            assert (h.PixelSpacing, h.SliceThickness, h.SpacingBetweenSlices) == (
                first.PixelSpacing,
                first.SliceThickness,
                first.SpacingBetweenSlices,
            )
            assert h.ImagePositionPatient[:2] == first.ImagePositionPatient[:2]
        if first.Modality == "CT":
            assert first.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2" and "RescaleIntercept" in first
        else:
            assert first.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4" and "RescaleIntercept" not in first
            assert pydicom.dcmread(paths[0]).pixel_array.min() >= 0


def test_summary_reports_and_truth_count_the_volumes(tmp_path: Path) -> None:
    summary = write_archive(tmp_path, studies=2, seed=3, volumes=5)
    truth = [json.loads(line) for line in open(tmp_path / "truth.jsonl")]
    volumes = [t for t in truth if "volume" in t]
    assert summary.volume_studies == summary.volume_series == len(volumes) == 5
    assert summary.studies == len(truth) == 7
    assert summary.instances == len(list((tmp_path / "dicom").rglob("*.dcm")))
    assert summary.reports == len((tmp_path / "reports" / "reports.jsonl").read_text().splitlines())
    assert {t["volume"]["modality"] for t in volumes} == {"CT", "MR"}
    reports = [json.loads(line) for line in open(tmp_path / "reports" / "reports.jsonl")]
    assert sum(r["text"].startswith("TECHNIQUE: ") for r in reports) == 5


def test_same_seed_same_volumes_other_seed_other_volumes(tmp_path: Path) -> None:
    def digest(folder: Path) -> str:
        hashed = hashlib.sha256()
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                hashed.update(str(path.relative_to(folder)).encode() + path.read_bytes())
        return hashed.hexdigest()

    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        write_archive(tmp_path / name, studies=1, seed=seed, volumes=4)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_volumes_leave_the_radiographs_as_they_were(tmp_path: Path) -> None:
    write_archive(tmp_path / "plain", studies=3, seed=4)
    write_archive(tmp_path / "more", studies=3, seed=4, volumes=2)
    plain = sorted(p.relative_to(tmp_path / "plain") for p in (tmp_path / "plain" / "dicom").rglob("*.dcm"))
    for relative in plain:
        assert (tmp_path / "plain" / relative).read_bytes() == (tmp_path / "more" / relative).read_bytes()
    first = (tmp_path / "plain" / "reports" / "reports.jsonl").read_text()
    assert (tmp_path / "more" / "reports" / "reports.jsonl").read_text().startswith(first)


def test_phi_is_planted_in_volume_headers_paths_and_reports(tmp_path: Path) -> None:
    write_archive(tmp_path, studies=1, seed=6, volumes=3, phi=True)
    truth = [json.loads(line) for line in open(tmp_path / "truth.jsonl")]
    volume_studies = [t for t in truth if "volume" in t]
    series = _series_files(tmp_path)
    for study in volume_studies:
        paths = series[study["volume"]["series_instance_uid"]]
        header = pydicom.dcmread(paths[0], stop_before_pixels=True)
        assert header.PatientID == study["patient_id"] and header.PatientID in str(paths[0])
        assert "PatientBirthDate" in header and any(element.tag.is_private for element in header)
    reports = (tmp_path / "reports" / "reports.jsonl").read_text()
    assert all(any(value in reports for value in t["report_phi"]) for t in volume_studies)
    manifest = (tmp_path / "volumes_manifest.json").read_text()
    assert not [
        value for t in truth for value in [t["patient_id"], t["accession_number"], *t["phi"]] if value in manifest
    ]


def test_plan_puts_the_real_layout_cases_first_from_four_volumes() -> None:
    assert all(case is SeriesCase.STANDARD for n in (1, 2, 3) for _, case in plan_series(n))
    assert [m for m, _ in plan_series(3)] == ["CT", "MR", "CT"]
    plan = plan_series(8)
    assert [case for _, case in plan[:4]] == [c for c in SeriesCase if c is not SeriesCase.STANDARD]
    assert all(m == "CT" for m, _ in plan[:4]) and [m for m, _ in plan[4:]] == ["MR", "CT", "CT", "CT"]
