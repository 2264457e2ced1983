"""Numeric attributes of a DICOM dataset, checked: GeometryError names what is missing or malformed, and where."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydicom.dataset import Dataset

from radpipe.errors import RadpipeError


class GeometryError(RadpipeError):
    """A header lacks, or garbles, the geometry needed to place a slice in space."""


def values(ds: Dataset, keyword: str, count: int, where: str) -> tuple[float, ...]:
    try:
        value = ds.get(keyword)
        if value is None or value == "" or (isinstance(value, Sequence) and not isinstance(value, str) and not value):
            raise GeometryError(f"missing {keyword}{where}")
        items = value if isinstance(value, Sequence) and not isinstance(value, str) else [value]
        numbers = tuple(float(v) for v in items)
    except (TypeError, ValueError):
        raise GeometryError(f"{keyword} is not numeric{where}") from None
    if len(numbers) != count or not all(math.isfinite(n) for n in numbers):
        raise GeometryError(f"{keyword} needs {count} finite number(s){where}")
    return numbers


def vector3(ds: Dataset, keyword: str, where: str = "") -> tuple[float, float, float]:
    x, y, z = values(ds, keyword, 3, where)
    return (x, y, z)


def image_orientation(ds: Dataset, where: str = "") -> tuple[float, float, float, float, float, float]:
    a, b, c, d, e, f = values(ds, "ImageOrientationPatient", 6, where)
    return (a, b, c, d, e, f)


def pair(ds: Dataset, keyword: str, where: str = "") -> tuple[float, float]:
    row, column = values(ds, keyword, 2, where)
    return (row, column)


def integer(ds: Dataset, keyword: str) -> int:
    (value,) = values(ds, keyword, 1, "")
    return int(value)


def optional_float(ds: Dataset, keyword: str, where: str = "") -> float | None:
    if ds.get(keyword) in (None, ""):
        return None
    (value,) = values(ds, keyword, 1, where)
    return value


def float_or(ds: Dataset, keyword: str, default: float, where: str = "") -> float:
    value = optional_float(ds, keyword, where)
    return default if value is None else value


def optional_integer(ds: Dataset, keyword: str) -> int | None:
    value = optional_float(ds, keyword)
    return None if value is None else int(value)
