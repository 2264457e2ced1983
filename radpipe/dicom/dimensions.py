"""Which sub-volume and time point a slice or frame belongs to, from the dimensions its object declares.

Frames at the same positions that differ on another dimension (a diffusion b-value or gradient, an echo, a
stack) make separate sub-volumes; a temporal dimension makes time points.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset

from radpipe.dicom.numbers import GeometryError, optional_float, optional_integer

T = TypeVar("T", bound=Any)  # a dataclass with a `stack` field


def classic_stack(ds: Dataset) -> str | None:
    """A single-frame slice's sub-volume: its diffusion b-value and a later echo, when it states them."""
    parts = []
    try:  # informative: a malformed value places the slice with the others rather than rejecting it
        b_value = optional_float(ds, "DiffusionBValue")
        echo = optional_integer(ds, "EchoNumbers")
    except GeometryError:
        return None
    if b_value is not None:
        parts.append(f"DiffusionBValue={round(b_value)}")
    if echo is not None and echo > 1:
        parts.append(f"EchoNumbers={echo}")
    return "/".join(parts) or None


TEMPORAL_POSITION_INDEX = 0x00209128


# Dimensions that place a frame in space or time; every other dimension (a diffusion b-value, a gradient
# direction, an echo, a segment) makes a separate sub-volume with frames at the same positions.
_PLACING_DIMENSIONS = frozenset(
    {
        0x00209056,  # StackID: part of the stack key itself
        0x00209057,  # InStackPositionNumber
        0x00200032,  # ImagePositionPatient
        0x00209128,  # TemporalPositionIndex
        0x00209153,  # NominalCardiacTriggerDelayTime
        0x00189241,  # NominalPercentageOfCardiacPhase
    }
)


def stack_key(content: Dataset, pointers: Sequence[int]) -> str:
    """A frame's sub-volume key: its StackID and its index on every dimension that does not place it."""
    values = content.get("DimensionIndexValues")
    items = [] if values is None else (list(values) if not isinstance(values, int) else [values])
    parts = [str(content.get("StackID") or "").strip()]
    for pointer, value in zip(pointers, items, strict=False):
        if pointer not in _PLACING_DIMENSIONS:
            parts.append(f"{keyword_for_tag(pointer) or f'{pointer:08X}'}={int(value)}")
    return "/".join(parts)


def rank_stacks(geometries: list[T]) -> list[T]:
    """Replace each StackID (source text) by its rank among the object's stacks, 1 first: no source text is kept."""
    ids = sorted({g.stack.split("/", 1)[0] for g in geometries if g.stack is not None}, key=lambda v: (len(v), v))
    rank = {stack_id: str(n) for n, stack_id in enumerate(ids, start=1)}

    def ranked(stack: str | None) -> str | None:
        if stack is None:
            return None
        stack_id, _, rest = stack.partition("/")
        return rank[stack_id] + ("/" + rest if rest else "")

    return [dataclasses.replace(g, stack=ranked(g.stack)) for g in geometries]


def temporal_index(content: Dataset, dimension: int | None, declared: bool) -> int | None:
    """A frame's time point: its DimensionIndexValues entry on the temporal dimension.

    TemporalPositionIndex is used only by an object that declares no dimensions: where dimensions are declared
    without time, its raw values can differ per slice of one volume (interleaved acquisitions), so they would
    cut a volume apart.
    """
    values = content.get("DimensionIndexValues")
    if dimension is not None and values is not None:
        items = list(values) if not isinstance(values, int) else [values]
        if dimension < len(items):
            return int(items[dimension])
    return None if declared else optional_integer(content, "TemporalPositionIndex")
