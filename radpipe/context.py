"""Build the objects a command needs from settings: the de-identifier, the Dask engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from radpipe.deid import Deidentifier, Pseudonymizer, load_key
from radpipe.settings import Settings, get_settings


def deidentifier(settings: Settings | None = None) -> Deidentifier:
    settings = settings or get_settings()
    return Deidentifier(Pseudonymizer(load_key(settings.radpipe_deid_key, settings.home)))


@contextmanager
def engine(settings: Settings | None = None) -> Iterator[object]:
    from radpipe.engine.dask import dask_engine  # Dask starts only for commands that need it

    settings = settings or get_settings()
    with dask_engine(settings.radpipe_dask_address, settings.radpipe_dask_workers, settings.home / "dask") as e:
        yield e
