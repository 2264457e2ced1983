"""Sources and datasets are fsspec URLs, not only local paths (in-process engine, memory filesystem)."""

from pathlib import Path

import fsspec
import pyarrow.parquet as pq

from radpipe.deid import Deidentifier
from radpipe.engine import SerialEngine
from radpipe.ingest.run import ingest
from radpipe.preprocess import get_profile


def test_ingest_between_fsspec_urls(archive: Path, deid: Deidentifier) -> None:
    memory = fsspec.filesystem("memory")
    files = [p for p in archive.rglob("*") if p.is_file() and p.parent.name != archive.name]
    for path in files:
        memory.pipe(f"/src/{path.relative_to(archive)}", path.read_bytes())
    summary = ingest(
        "memory://src/dicom", "memory://src/reports", "memory://dataset", deid, get_profile("cxr-224"), SerialEngine()
    )
    n_dicom = sum(1 for p in files if p.suffix == ".dcm")
    assert summary.instances_added == n_dicom and summary.balanced
    with memory.open("/dataset/studies/part-0.parquet", "rb") as fh:
        assert pq.read_table(fh).num_rows == summary.studies > 0
    again = ingest(
        "memory://src/dicom", "memory://src/reports", "memory://dataset", deid, get_profile("cxr-224"), SerialEngine()
    )
    assert again.files_in == 0 and again.reports_added == 0
