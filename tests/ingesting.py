"""Ingest for tests: the library call with the in-process engine and the session's RADPIPE_HOME."""

from __future__ import annotations

from pathlib import Path

from radpipe.deid import Deidentifier
from radpipe.engine import SerialEngine
from radpipe.ingest.run import IngestSummary, ingest
from radpipe.preprocess import get_profile
from radpipe.settings import get_settings


def serial_ingest(archive: Path, dataset: Path, deid: Deidentifier, reports: bool = True) -> IngestSummary:
    """`archive/dicom` (and `archive/reports`) into `dataset`, profile cxr-224."""
    return ingest(
        str(archive / "dicom"),
        str(archive / "reports") if reports else None,
        str(dataset),
        deid,
        get_profile("cxr-224"),
        SerialEngine(),
        home=get_settings().home,
    )
