"""Execution engines: where per-batch work runs (a Dask cluster, or in-process for unit tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Engine(Protocol):
    """Runs a function over argument tuples, yielding results as they complete."""

    workers: int

    def map_unordered(
        self, fn: Callable[..., T], args: Iterable[tuple[Any, ...]], max_in_flight: int
    ) -> Iterator[T]: ...


class SerialEngine:
    """In-process, one at a time: for unit tests and debugging."""

    workers = 1

    def map_unordered(self, fn: Callable[..., T], args: Iterable[tuple[Any, ...]], max_in_flight: int) -> Iterator[T]:
        for item in args:
            yield fn(*item)
