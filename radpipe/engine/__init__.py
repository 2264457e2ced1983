"""Execution engines: where per-batch work runs (a Dask cluster, or in-process for unit tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class WorkerCrashed(RuntimeError):
    """The process running a task died (a codec segfault, the kernel's OOM killer): not a Python error."""


@dataclass(frozen=True)
class TaskFailure:
    """Yielded in place of a result when the task's worker crashed; the caller decides what to redo."""

    args: tuple[Any, ...]
    error: str


class Engine(Protocol):
    """Runs a function over argument tuples, yielding results (or TaskFailure on a crash) as they complete."""

    workers: int

    def map_unordered(
        self, fn: Callable[..., T], args: Iterable[tuple[Any, ...]], max_in_flight: int
    ) -> Iterator[T | TaskFailure]: ...

    def share(self, value: Any) -> Any:
        """A handle to pass as a task argument in place of a large value every task needs (sent once)."""
        ...


class SerialEngine:
    """In-process, one at a time: for unit tests and debugging."""

    workers = 1

    def share(self, value: Any) -> Any:
        return value

    def map_unordered(
        self, fn: Callable[..., T], args: Iterable[tuple[Any, ...]], max_in_flight: int
    ) -> Iterator[T | TaskFailure]:
        for item in args:
            try:
                yield fn(*item)
            except WorkerCrashed as exc:
                yield TaskFailure(item, str(exc))
