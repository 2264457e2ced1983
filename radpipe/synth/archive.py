"""Write the synthetic archive: OUT/dicom/**.dcm, OUT/reports/reports.jsonl and OUT/truth.jsonl.

With volumes, also OUT/volumes_manifest.json: each CT/MR series' UID and on-disk layout (series.py). Studies are
planned here in order; each is written from its plan by radpipe.synth.study, here or in a pool.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np

from radpipe.dicom.codes import Modality
from radpipe.errors import RadpipeError
from radpipe.synth.findings import Findings, State, sample_findings
from radpipe.synth.identities import Patient, make_patient
from radpipe.synth.series import SeriesCase, WrittenSeries, plan_series
from radpipe.synth.study import Rendered, StudyPlan, VolumePlan, render, uid

STUDIES_PER_PATIENT = 1.6


IMAGES_MISSING_FRACTION = 0.03  # report arrived, images not yet: reports/ must keep it


REPORT_MISSING_FRACTION = 0.03


# A chest CT often follows a chest film: half the volume studies go to a patient who has radiographs too.
VOLUME_SHARED_PATIENT_FRACTION = 0.5


@dataclass
class SynthSummary:
    studies: int = 0  # every study, radiograph and volume
    patients: int = 0
    instances: int = 0  # DICOM files: a multi-frame volume is one
    reports: int = 0
    transfer_syntaxes: dict[str, int] = field(default_factory=dict)
    volume_studies: int = 0  # of `studies`, the CT/MR ones
    volume_series: int = 0


def write_archive(
    out: Path,
    studies: int,
    seed: int = 0,
    phi: bool = False,
    volumes: int = 0,
    on_study: Callable[[], None] | None = None,
    workers: int = 1,
) -> SynthSummary:
    """Generate `studies` chest radiograph studies and `volumes` CT/MR studies (and their reports) under `out`.

    Studies are planned in order in this process (every random draw that decides what exists and who owns it),
    then drawn, encoded and written here (`workers` 1, the default) or by a pool of `workers` spawned processes
    (the caller's main module must be import-safe, as for any spawn pool); the archive is the same file for
    file whatever the number of workers. `on_study` is called once per study written, radiograph or CT/MR.
    """
    if studies < 1:
        raise RadpipeError("--studies must be at least 1")
    if volumes < 0:
        raise RadpipeError("--volumes must be 0 or more")
    if workers < 1:
        raise RadpipeError("--workers must be at least 1")
    if (out / "dicom").exists() and any((out / "dicom").iterdir()):
        raise RadpipeError(f"{out}/dicom already holds files; choose an empty output folder")
    master = np.random.default_rng(seed)
    n_patients = max(1, round(studies / STUDIES_PER_PATIENT))
    patients = [make_patient(np.random.default_rng([seed, 1, i]), i, phi) for i in range(n_patients)]
    owners = list(range(n_patients)) + [int(master.integers(n_patients)) for _ in range(studies - n_patients)]
    summary = SynthSummary(studies=studies, patients=n_patients)
    plans: list[StudyPlan | VolumePlan] = []
    instances = 0  # written before each study: each instance takes the next transfer syntax in turn
    for index, owner in enumerate(owners[:studies]):
        plan = _plan_study(index, owner, patients[owner], seed, phi, instances)
        plans.append(plan)
        instances += len(plan.views)
    plans += _plan_volume_studies(volumes, seed, phi, patients, studies, summary)
    (out / "reports").mkdir(parents=True, exist_ok=True)
    written: list[WrittenSeries] = []
    write = partial(render, out, seed, phi)
    with (
        open(out / "reports" / "reports.jsonl", "w") as reports,
        open(out / "truth.jsonl", "w") as truth,
        _mapper(len(plans), workers) as mapped,
    ):
        for result in mapped(write, plans):
            if result.report is not None:
                reports.write(result.report + "\n")
                summary.reports += 1
            truth.write(result.truth + "\n")
            summary.instances += len(result.transfer_syntaxes)
            for name in result.transfer_syntaxes:
                summary.transfer_syntaxes[name] = summary.transfer_syntaxes.get(name, 0) + 1
            if result.series is not None:
                written.append(result.series)
                summary.studies += 1
                summary.volume_studies += 1
                summary.volume_series += 1
            if on_study:
                on_study()
    if written:
        manifest = {
            "seed": seed,
            "cases": {s.case.value: s.series_instance_uid for s in written if s.case is not SeriesCase.STANDARD},
            "series": [s.manifest_row() for s in written],
        }
        (out / "volumes_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return summary


# Below this many studies a pool's start-up (each worker imports numpy, pydicom and the codecs) costs more than
# the drawing it would share.
POOL_FROM_STUDIES = 200


def default_workers(studies: int) -> int:
    """One process per core this process may use (at most 8) from POOL_FROM_STUDIES studies, else 1."""
    return min(len(os.sched_getaffinity(0)), 8) if studies >= POOL_FROM_STUDIES else 1


@contextmanager
def _mapper(tasks: int, workers: int) -> Iterator[Callable[..., Iterable[Rendered]]]:
    """An ordered `map`: in this process, or over a pool of `workers` processes (spawned: no lock of a
    threaded caller is inherited)."""
    workers = min(workers, tasks)
    if workers <= 1:
        yield map
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield partial(pool.map, chunksize=4)


def _plan_study(index: int, owner: int, patient: Patient, seed: int, phi: bool, first_instance: int) -> StudyPlan:
    """A radiograph study's existence, owner, findings and views (some studies have no images or no report)."""
    rng = np.random.default_rng([seed, 2, index])
    findings = sample_findings(rng)
    date = dt.date(2016, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 8)))
    study = {
        "uid": uid(seed, "study", index),
        "accession": f"ACC{seed % 1000:03d}{index:07d}" if not phi else f"A{int(rng.integers(10**8, 10**9))}",
        "date": date.strftime("%Y%m%d"),
        "index": f"{index:05d}",
    }
    has_images = rng.random() >= IMAGES_MISSING_FRACTION
    has_report = rng.random() >= REPORT_MISSING_FRACTION or not has_images
    views = _views(rng, findings) if has_images else []
    return StudyPlan(index, owner, patient, rng, findings, date, study, has_report, views, first_instance)


def _plan_volume_studies(
    count: int, seed: int, phi: bool, patients: list[Patient], first_index: int, summary: SynthSummary
) -> list[VolumePlan]:
    """`count` chest CT/MR studies of one series each (series.py), numbered on after the radiographs; half go to
    a patient who has radiographs too, the others to new patients (appended to `patients`)."""
    plans = []
    for number, (modality, case) in enumerate(plan_series(count)):
        rng = np.random.default_rng([seed, 3, number])
        index = first_index + number
        if rng.random() < VOLUME_SHARED_PATIENT_FRACTION:
            owner = int(rng.integers(len(patients)))
        else:
            owner = len(patients)
            patients.append(make_patient(np.random.default_rng([seed, 1, owner]), owner, phi))
            summary.patients += 1
        findings = sample_findings(rng)
        if modality is Modality.MR:
            # Tubes and lines do not show on MR (and rarely go into the scanner): the report must not claim one.
            findings = replace(findings, states={**findings.states, "support_devices": State.ABSENT})
        date = dt.date(2016, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 8)))
        study = {
            "uid": uid(seed, "volume-study", number),
            "accession": f"ACC{seed % 1000:03d}{index:07d}" if not phi else f"A{int(rng.integers(10**8, 10**9))}",
            "date": date.strftime("%Y%m%d"),
            "index": f"{index:05d}",
        }
        plans.append(VolumePlan(number, index, owner, patients[owner], rng, findings, modality, case, date, study))
    return plans


def _views(rng: np.random.Generator, findings: Findings) -> list[tuple[str, str]]:
    """(modality, view) pairs: PA (+ lateral) in the department, AP portables on the ward."""
    modality = "DX" if rng.random() < 0.6 else "CR"
    if rng.random() < (0.6 if findings.present("support_devices") else 0.2):
        return [(modality, "AP")]
    views = [(modality, "PA")]
    if rng.random() < 0.4:
        views.append((modality, "LATERAL"))
    return views
