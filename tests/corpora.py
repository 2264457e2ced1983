"""Real DICOM test corpora from other projects' packages on PyPI, pinned by version and cached.

`python -m tests.corpora` (what `make corpora`, and so `make test`, runs) downloads and unpacks them into
.cache/corpora/<name>/dicom (non-DICOM files of the test folders included: an archive has them too); a
second run does nothing. None of them is committed: they are other
projects' public test data (de-identified or phantom scans from real scanners).
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(__file__).resolve().parents[1] / ".cache" / "corpora"


@dataclass(frozen=True)
class Corpus:
    name: str
    requirement: str  # pinned: the test's expectations hold for exactly these files
    folder: str  # inside the unpacked distribution
    source_dist: bool = False  # the files ship only in the source distribution


CORPORA = (
    # pydicom's own test files: 68 objects from many vendors, codecs and photometric interpretations.
    Corpus("pydicom-data", "pydicom-data==1.0.0", "data_store/data"),
    # nibabel's DICOM tests: Siemens mosaics and DWI, Philips enhanced multi-frame MR (some gzipped).
    Corpus("nibabel", "nibabel==5.3.2", "nibabel-5.3.2/nibabel/nicom/tests/data", source_dist=True),
    # heudiconv's tests: Siemens, Philips and GE MR series, a phantom, a Phoenix protocol document.
    Corpus("heudiconv", "heudiconv==1.3.3", "heudiconv/tests/data"),
)


# Real report text from torchxrayvision's wheel on PyPI: PadChest's labelled, stemmed Spanish chest X-ray
# reports (BIMCV), and Open-i's English chest X-ray reports (Indiana University, NLM; identifiers already
# replaced by XXXX, CC BY-NC-ND: read by tests and the bench, never redistributed).
REPORTS_REQUIREMENT = "torchxrayvision==1.5.7"
REPORT_MEMBERS = {
    "padchest/padchest.csv.gz": "torchxrayvision/data/PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz",
    "openi/NLMCXR_reports.tgz": "torchxrayvision/data/NLMCXR_reports.tgz",
}


def padchest_csv() -> Path:
    """PadChest's CSV (gzip); fetched once."""
    return _report_corpus("padchest/padchest.csv.gz")


def openi_reports() -> Path:
    """Open-i's reports (a tar of one XML per report); fetched once."""
    return _report_corpus("openi/NLMCXR_reports.tgz")


def _report_corpus(name: str) -> Path:
    target = CACHE / name
    if target.exists():
        return target
    download = CACHE / "report-corpora-download"
    shutil.rmtree(download, ignore_errors=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:"]
    subprocess.run([*command, "-d", str(download), REPORTS_REQUIREMENT], check=True)
    (wheel,) = download.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for local, member in REPORT_MEMBERS.items():  # both at once: one download of the wheel
            out_path = CACHE / local
            if out_path.exists():
                continue
            out_path.parent.mkdir(parents=True, exist_ok=True)
            temporary = out_path.with_suffix(".tmp")
            with archive.open(member) as source, open(temporary, "wb") as out:
                shutil.copyfileobj(source, out)
            temporary.replace(out_path)
    shutil.rmtree(download)
    return target


def corpus_path(name: str) -> Path:
    """The DICOM folder of a corpus; a one-line error when it has not been fetched."""
    path = CACHE / name / "dicom"
    if not (CACHE / name / ".complete").exists():
        raise FileNotFoundError(f"corpus {name} not fetched: run `make corpora` (python -m tests.corpora)")
    return path


def fetch(corpus: Corpus) -> Path:
    target = CACHE / corpus.name / "dicom"
    if (CACHE / corpus.name / ".complete").exists():
        return target
    download = CACHE / corpus.name / "download"
    shutil.rmtree(download, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    binary = ["--no-binary", ":all:"] if corpus.source_dist else ["--only-binary", ":all:"]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *binary, "-d", str(download)]
    subprocess.run([*command, corpus.requirement], check=True)
    (archive,) = download.iterdir()
    unpacked = CACHE / corpus.name / "unpacked"
    shutil.rmtree(unpacked, ignore_errors=True)
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            wheel.extractall(unpacked)
    else:
        with tarfile.open(archive) as sdist:
            sdist.extractall(unpacked, filter="data")
    shutil.copytree(unpacked / corpus.folder, target)
    for packed in target.rglob("*.dcm.gz"):  # stored gzipped to save space in the package; DICOM inside
        with gzip.open(packed) as source, open(packed.with_suffix(""), "wb") as out:
            shutil.copyfileobj(source, out)
        packed.unlink()
    shutil.rmtree(unpacked)
    shutil.rmtree(download)
    (CACHE / corpus.name / ".complete").touch()
    return target


if __name__ == "__main__":
    for item in CORPORA:
        path = fetch(item)
        print(f"{item.name}: {sum(1 for p in path.rglob('*') if p.is_file())} files")
    print(f"padchest: {padchest_csv().stat().st_size / 1e6:.1f} MB")
    print(f"openi: {openi_reports().stat().st_size / 1e6:.1f} MB")
