"""The Dask adapter: a local cluster by default, RADPIPE_DASK_ADDRESS for an existing scheduler."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import dask
from distributed import Client, KilledWorker, LocalCluster, as_completed

from radpipe.engine import TaskFailure, WorkerCrashed
from radpipe.errors import ConfigError

T = TypeVar("T")


class DaskEngine:
    """Runs batch tasks on a Dask cluster, keeping a bounded number in flight (flat memory)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.workers = max(1, sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values()))

    def share(self, value: Any) -> Any:
        """Scattered to every worker once; tasks given the future receive the value."""
        [future] = self.client.scatter([value], broadcast=True, hash=False)  # a dict alone would scatter its items
        return future

    def map_unordered(
        self, fn: Callable[..., T], args: Iterable[tuple[Any, ...]], max_in_flight: int
    ) -> Iterator[T | TaskFailure]:
        pending = iter(args)
        running = as_completed()
        submitted: dict[object, tuple[Any, ...]] = {}

        def submit(item: tuple[Any, ...]) -> None:
            future = self.client.submit(fn, *item, pure=False)
            submitted[future.key] = item
            running.add(future)

        for item in pending:
            submit(item)
            if running.count() >= max_in_flight:
                break
        for future in running:
            item = submitted.pop(future.key)
            try:
                result: T | TaskFailure = future.result()
            except KilledWorker as exc:  # the worker process died on this task, every time it was tried
                result = TaskFailure(item, f"worker crashed ({type(exc).__name__})")
            except WorkerCrashed as exc:
                result = TaskFailure(item, str(exc))
            future.release()
            for next_item in pending:
                submit(next_item)
                break
            yield result


@contextmanager
def dask_engine(address: str | None, workers: int, scratch: Path) -> Iterator[DaskEngine]:
    """Connect to `address`, or start a local process cluster with `workers` (0: one per core)."""
    if address:
        try:
            client = Client(address, timeout="20s")
        except OSError as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at RADPIPE_DASK_ADDRESS={address}: {exc}") from None
        try:
            yield DaskEngine(client)
        finally:
            client.close()
        return
    scratch.mkdir(parents=True, exist_ok=True)
    # The worker's statistical profiler samples every 10 ms: measurable CPU on 2-core machines, no use here.
    dask.config.set({"distributed.worker.profile.enabled": False})
    # Dask sets MALLOC_TRIM_THRESHOLD_ in workers, which turns off glibc's dynamic mmap threshold: every
    # multi-MB pixel array is then mmapped and page-faulted afresh, making decode ~40% slower (make bench).
    dask.config.set(
        {
            "distributed.nanny.pre-spawn-environ": {
                "OMP_NUM_THREADS": 1,
                "MKL_NUM_THREADS": 1,
                "OPENBLAS_NUM_THREADS": 1,
            }
        }
    )
    n_workers = workers or os.cpu_count() or 1
    for noisy in ("distributed", "distributed.nanny", "distributed.scheduler", "distributed.worker"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,  # decoding holds the GIL in places; processes scale, threads do not
        processes=True,
        dashboard_address=None,
        # The scheduler serves /health even without a dashboard, on 8787 unless told: a second run beside the
        # first would warn "Port 8787 is already in use". Any free port will do.
        scheduler_kwargs={"dashboard_address": ":0"},
        local_directory=str(scratch),
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    try:
        yield DaskEngine(client)
    finally:
        client.close()
        cluster.close()
