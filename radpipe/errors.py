"""Errors a user can cause and fix; the CLI prints them as one line, never as a traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class RadpipeError(Exception):
    """A user-facing error: bad input, missing file, wrong setting."""


class ConfigError(RadpipeError):
    """A setting or configuration value is invalid."""


class SourceError(RadpipeError):
    """A source (archive, report file, dataset) cannot be read as asked."""


def first_problem(exc: ValidationError, whole: str, show_input: bool = False) -> str:
    """pydantic's first problem as one line: `field.path: message` (`whole` names a problem with no field), and
    how many there are when more than one. `show_input` adds the value when it is a number or a truth value
    (`(got -1)`): never text, which could be a path, a secret or a report."""
    first = exc.errors()[0]
    line = f"{'.'.join(str(p) for p in first['loc']) or whole}: {first['msg']}"
    if show_input and isinstance(first.get("input"), int | float | bool):
        line += f" (got {first['input']!r})"
    more = exc.error_count() - 1
    return line + (f"; and {more} more" if more else "")
