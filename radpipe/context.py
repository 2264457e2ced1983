"""Build the objects a command needs from settings: the de-identifier, the Dask engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from radpipe.deid import Deidentifier, Pseudonymizer, load_key
from radpipe.engine.dask import DaskEngine
from radpipe.ingest.run import IngestSummary, ProgressCallback, check_sources, ingest
from radpipe.preprocess import get_profile
from radpipe.settings import Settings, get_settings


def deidentifier(settings: Settings | None = None) -> Deidentifier:
    settings = settings or get_settings()
    return Deidentifier(Pseudonymizer(load_key(settings.radpipe_deid_key, settings.home)))


@contextmanager
def engine(settings: Settings | None = None) -> Iterator[DaskEngine]:
    from radpipe.engine.dask import dask_engine

    settings = settings or get_settings()
    with dask_engine(settings.radpipe_dask_address, settings.radpipe_dask_workers, settings.home / "dask") as e:
        yield e


def ingest_sources(
    dicom: str | None,
    reports: str | None,
    dataset: str,
    profile_name: str,
    on_progress: ProgressCallback | None = None,
) -> IngestSummary:
    """Ingest with the configured key and Dask engine; what the CLI and the Prefect flow both call."""
    profile = get_profile(profile_name)
    check_sources(dicom, reports, dataset)  # before a cluster starts: a typo should cost a second, not ten
    deid = deidentifier()
    with engine() as dask:
        return ingest(dicom, reports, dataset, deid, profile, dask, on_progress)
