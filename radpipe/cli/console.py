"""The terminals the commands write to, a progress bar that appears when work starts, argument types."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

# soft_wrap: an error stays one line whatever the terminal width (scripts and log scrapers split on lines).
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)  # a result line stays one line in a pipe or a log


class LazyProgress:
    """A progress bar that appears with the first update, so an early error prints alone."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def update(self, done: int, total: int | None) -> None:
        if self.bar is None:
            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
            )
            self.bar.start()
            self.task = self.bar.add_task(self.description, total=total)
        assert self.task is not None
        self.bar.update(self.task, completed=done, total=total)

    def __enter__(self) -> LazyProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def count(text: str) -> int:
    """A non-negative integer argument (seeds, counts): argparse prints the one-line error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def say(message: str) -> None:
    """A status line on stderr, as written (no rich markup highlighting)."""
    console.print(message, highlight=False)
