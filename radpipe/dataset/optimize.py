"""Looking after a dataset's Delta tables: compact small files, vacuum what retention no longer needs.

Ingest adds one file per batch and table, so `_ledger/`, `quarantine/` and `reports/` gather many small files;
compaction rewrites them into files of about `target_bytes` in a commit that changes no row. Pixel tables
(images/, slices/, volumes/) are left as ingest wrote them: batch files sized for 0.5-1 GB, no statistics,
dictionary or compression on the pixel column. Vacuum then deletes the files that no table version younger than
the retention period names, and files no commit ever named (a crashed batch's), once they are that old.
A version older than the retention period may no longer be readable afterwards (`DATASET@VERSION` says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from radpipe.dataset.delta import evolve, open_table, protect
from radpipe.dataset.schema import PAYLOAD_COLUMNS, TABLES
from radpipe.dataset.store import DatasetStore

TARGET_BYTES = 256 * 1024**2


@dataclass
class OptimizeSummary:
    files_before: dict[str, int] = field(default_factory=dict)
    files_after: dict[str, int] = field(default_factory=dict)
    vacuumed: dict[str, int] = field(default_factory=dict)  # files deleted, by table
    retention_days: float = 30.0

    @property
    def compacted(self) -> int:
        return sum(self.files_before.values()) - sum(self.files_after.values())


def optimize_tables(store: DatasetStore, retention_days: float, target_bytes: int = TARGET_BYTES) -> OptimizeSummary:
    """Compact, then vacuum, every table of the dataset; call under the dataset lock."""
    summary = OptimizeSummary(retention_days=retention_days)
    for table in TABLES:
        delta = open_table(store.table_uri(table))
        if delta is None:
            continue
        summary.files_before[table] = len(store.table_files(table))
        protect(delta)  # compaction is delta-rs's own writer: no column statistics may reach the log
        evolve(delta, TABLES[table])  # nor may it drop a column the table's schema lacks
        pixels = any(column in PAYLOAD_COLUMNS for column in TABLES[table].names)
        if summary.files_before[table] > 1 and not pixels:  # pixel tables keep radpipe's own layout (README)
            delta.optimize.compact(target_size=target_bytes)
            delta.update_incremental()
        summary.files_after[table] = len(store.table_files(table))
        deleted = delta.vacuum(
            retention_hours=int(retention_days * 24), dry_run=False, enforce_retention_duration=False, full=True
        )
        summary.vacuumed[table] = len(deleted)
    return summary
