"""Sources and datasets are fsspec URLs, not only local paths (in-process engine, memory filesystem)."""

from pathlib import Path

import fsspec
import pyarrow.parquet as pq

from radpipe.deid import Deidentifier
from radpipe.engine import SerialEngine
from radpipe.ingest.run import ingest
from radpipe.preprocess import get_profile
from radpipe.settings import get_settings


def test_ingest_between_fsspec_urls(archive: Path, deid: Deidentifier, tmp_path: Path) -> None:
    memory = fsspec.filesystem("memory")  # process-wide: this run gets a root of its own
    root = f"/{tmp_path.name}"
    files = [p for p in archive.rglob("*") if p.is_file() and p.parent.name != archive.name]
    for path in files:
        memory.pipe(f"{root}/src/{path.relative_to(archive)}", path.read_bytes())
    source, dataset = f"memory:/{root}/src", f"memory:/{root}/dataset"

    def run():
        return ingest(
            f"{source}/dicom",
            f"{source}/reports",
            dataset,
            deid,
            get_profile("cxr-224"),
            SerialEngine(),
            home=get_settings().home,
        )

    summary = run()
    assert summary.instances_added == sum(1 for p in files if p.suffix == ".dcm") and summary.balanced
    with memory.open(f"{root}/dataset/studies/part-0.parquet", "rb") as fh:
        assert pq.read_table(fh).num_rows == summary.studies > 0
    again = run()
    assert again.files_in == 0 and again.reports_added == 0
