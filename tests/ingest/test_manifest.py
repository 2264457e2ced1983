"""A manifest names the DICOM objects of a run instead of a listing (a newline list, or an S3 Inventory CSV)."""

from __future__ import annotations

import gzip
from pathlib import Path
from urllib.parse import quote

import fsspec
import pytest

from radpipe.deid import Deidentifier
from radpipe.engine import SerialEngine
from radpipe.errors import SourceError
from radpipe.ingest.run import ingest
from radpipe.preprocess import get_profile
from radpipe.settings import get_settings
from tests import s3server
from tests.tables import read_delta

s3_server = s3server.s3_server
s3_env = s3server.s3_env


def _ingest(dicom: str, dataset: str, deid: Deidentifier, manifest: str | None):
    return ingest(
        dicom,
        None,
        dataset,
        deid,
        get_profile("cxr-224"),
        SerialEngine(),
        home=get_settings().home,
        dicom_manifest=manifest,
    )


def test_a_newline_manifest_ingests_only_what_it_lists(archive: Path, deid: Deidentifier, tmp_path: Path) -> None:
    dicom = archive / "dicom"
    files = sorted(p for p in dicom.rglob("*") if p.is_file())
    listed = files[: len(files) // 2]
    manifest = tmp_path / "new.txt"
    lines = [str(p.relative_to(dicom)) for p in listed[:-1]] + [str(listed[-1])]  # relative and absolute
    lines += ["missing/never-written.dcm", "/elsewhere/outside-the-source.dcm", ""]
    manifest.write_text("\n".join(lines) + "\n")
    dataset = str(tmp_path / "ds")

    first = _ingest(str(dicom), dataset, deid, str(manifest))
    assert first.files_seen == len(listed) and first.files_in == len(listed) + 1  # + the listed, missing one
    (missing,) = [r for r in read_delta(tmp_path / "ds" / "quarantine").to_pylist() if r["stage"] == "read"]
    assert missing["detail"] == "file not listable (listed in the manifest but not found)"
    rest = _ingest(str(dicom), dataset, deid, None)  # a full listing later adds exactly the others
    assert rest.files_in == len(files) - len(listed)
    with pytest.raises(SourceError, match="give the --dicom source"):
        _ingest(None, dataset, deid, str(manifest))


@pytest.mark.integration
def test_an_s3_inventory_csv_names_objects_with_their_sizes(
    archive: Path, deid: Deidentifier, s3_env: str, tmp_path: Path
) -> None:
    fs, root = fsspec.url_to_fs(s3_env)
    bucket, prefix = root.split("/", 1)
    dicom = archive / "dicom"
    files = sorted(p for p in dicom.rglob("*") if p.is_file())[:6]
    rows = []
    for n, path in enumerate(files):
        key = f"{prefix}/src/study {n}/{path.name}"  # a space: inventory keys are URL-encoded
        fs.pipe(f"{bucket}/{key}", path.read_bytes())
        rows.append(f'"{bucket}","{quote(key)}","{path.stat().st_size}","2026-11-29T00:00:00.000Z"')
    rows.append(f'"{bucket}","{quote(prefix)}/other/x.dcm","10","2026-11-29T00:00:00.000Z"')  # not under source
    inventory = tmp_path / "inventory.csv.gz"
    inventory.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))

    summary = _ingest(s3_env + "src", s3_env + "ds", deid, str(inventory))
    assert summary.files_seen == summary.files_in == 6 and summary.balanced
    assert summary.instances_added + summary.quarantined_files == 6
