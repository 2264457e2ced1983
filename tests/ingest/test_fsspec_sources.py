"""Sources are fsspec URLs, not only local paths (in-process engine, memory filesystem); a dataset needs a store
Delta Lake writes to (local, s3://, gs://, az://: tests/ingest/test_object_store.py)."""

from pathlib import Path

import fsspec

from radpipe.deid import Deidentifier
from radpipe.engine import SerialEngine
from radpipe.ingest.run import ingest
from radpipe.preprocess import get_profile
from radpipe.settings import get_settings
from tests.tables import read_delta


def test_ingest_between_fsspec_urls(archive: Path, deid: Deidentifier, tmp_path: Path) -> None:
    memory = fsspec.filesystem("memory")  # process-wide: this run gets a root of its own
    root = f"/{tmp_path.name}"
    files = [p for p in archive.rglob("*") if p.is_file() and p.parent.name != archive.name]
    for path in files:
        memory.pipe(f"{root}/src/{path.relative_to(archive)}", path.read_bytes())
    source, dataset = f"memory:/{root}/src", str(tmp_path / "dataset")

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
    assert read_delta(tmp_path / "dataset" / "studies").num_rows == summary.studies > 0
    again = run()
    assert again.files_in == 0 and again.reports_added == 0


def test_a_dataset_on_a_store_delta_lake_cannot_write_is_refused_in_one_line(tmp_path: Path) -> None:
    from radpipe.dataset.store import DatasetStore
    from radpipe.errors import SourceError

    try:
        DatasetStore("memory://somewhere/dataset")
    except SourceError as exc:
        assert "memory" in str(exc) and "s3://" in str(exc) and "\n" not in str(exc)
    else:
        raise AssertionError("a memory:// dataset was accepted")
