"""How report files become batches: small files share one, a large JSONL is cut into line-aligned byte
ranges so several workers read it at once.

One 110k-report JSONL was one task on one worker for 35 minutes. The driver reads the file once, in
blocks, to find a line start near each cut and to number the lines before it (quarantine records and
appended-file checks use the line numbers of the whole file). Each part is its own batch; only the last
part's batch records the file in the ledger, and batches publish in order, so a run killed between parts
leaves the file unrecorded: the rerun reads it again and the reports already committed are recognised as
unchanged, never doubled.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import fsspec

from radpipe.ingest.sources import FilePart, SourceFile
from radpipe.reports.readers import SNIFF_BYTES, sniff_encoding

SPLITTABLE = (".jsonl", ".ndjson", ".json")  # one record per line (radpipe reads .json as JSONL)
SPLIT_ABOVE_BYTES = 8 * 1024**2  # smaller files are read whole
MIN_PART_BYTES = 4 * 1024**2
MAX_PART_BYTES = 64 * 1024**2
PARTS_PER_WORKER = 4
_BLOCK = 8 * 1024**2


def part_bytes(size: int, workers: int) -> int:
    """Parts small enough that every worker gets several, large enough that each is worth a task."""
    return max(MIN_PART_BYTES, min(MAX_PART_BYTES, math.ceil(size / (max(1, workers) * PARTS_PER_WORKER))))


def split_report_file(source: SourceFile, workers: int) -> list[SourceFile]:
    """The file itself, or its parts when it is a large line-oriented file in a byte-splittable encoding."""
    if source.size <= SPLIT_ABOVE_BYTES or not source.url.lower().endswith(SPLITTABLE):
        return [source]
    try:
        with fsspec.open(source.url, "rb") as fh:
            encoding = sniff_encoding(fh.read(SNIFF_BYTES))
            if encoding == "utf-16":  # two bytes a character: a newline byte may sit inside one
                return [source]
            fh.seek(0)
            ranges = line_ranges(fh, source.size, part_bytes(source.size, workers))
    except OSError:  # read as one task, which quarantines it (unreadable, retried) without stopping the run
        return [source]
    if len(ranges) < 2:
        return [source]
    last = len(ranges) - 1
    return [
        SourceFile(source.url, source.source_key, source.size, source.mtime, FilePart(s, e, n, i == last, encoding))
        for i, (s, e, n) in enumerate(ranges)
    ]


def line_ranges(fh: object, size: int, step: int) -> list[tuple[int, int, int]]:
    """(start, end, first line number) of ranges of about `step` bytes, cut after a newline."""
    read = fh.read  # type: ignore[attr-defined]
    ranges: list[tuple[int, int, int]] = []
    start, first_line, lines, offset = 0, 1, 0, 0
    target = step
    while target < size:
        block = read(_BLOCK)
        if not block:
            break
        local = max(0, target - offset)
        while local < len(block):
            newline = block.find(b"\n", local)
            if newline < 0:
                break
            boundary = offset + newline + 1
            before = lines + block.count(b"\n", 0, newline + 1)
            if boundary < size:
                ranges.append((start, boundary, first_line))
                start, first_line = boundary, before + 1
            target = boundary + step
            local = max(newline + 1, target - offset)
        lines += block.count(b"\n")
        offset += len(block)
    ranges.append((start, size, first_line))
    return ranges


# Report files share a task (and a data file) up to these sizes; a larger file is a task of its own and streams.
REPORT_BATCH_BYTES = 64 * 1024**2
REPORT_BATCH_FILES = 2000


def report_chunks(files: list[SourceFile], workers: int, min_batches_per_worker: int) -> Iterator[list[SourceFile]]:
    """Consecutive report files grouped by bytes and count, with enough groups to keep every worker busy."""
    per_batch = max(1, min(REPORT_BATCH_FILES, math.ceil(len(files) / (workers * min_batches_per_worker))))
    group: list[SourceFile] = []
    group_bytes = 0
    for source in files:
        if source.part is not None:  # a part of a large file is a batch of its own
            if group:
                yield group
                group, group_bytes = [], 0
            yield [source]
            continue
        if group and (len(group) >= per_batch or group_bytes + source.size > REPORT_BATCH_BYTES):
            yield group
            group, group_bytes = [], 0
        group.append(source)
        group_bytes += source.size
    if group:
        yield group
