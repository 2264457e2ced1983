"""Which keys (SOP instance UIDs, report ids) a dataset already holds: the de-duplication join of an ingest.

A worker looks its batch's keys up in the table as the run found it (`KeyLookup`: the key column of each file,
then the matching row groups only), so the driver never holds a map of every key in the dataset. The driver
adds what this run committed before the batch (`KnownKeys`): its memory follows the new data, not the archive.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from radpipe.dataset.store import DatasetStore


@dataclass(frozen=True)
class KeyLookup:
    """The files of one table when a run began, and the column holding its key."""

    table: str
    column: str
    files: frozenset[str]

    def holders(self, store: DatasetStore, keys: Collection[str]) -> dict[str, str]:
        """Key -> source key of the rows among these files whose key is one of `keys`."""
        found: dict[str, str] = {}
        if not keys or not self.files:
            return found
        columns = [self.column, "source_key"]
        for group in store.iter_row_groups(self.table, columns, where=(self.column, keys), files=self.files):
            found.update(zip(group.rows[self.column].to_pylist(), group.rows["source_key"].to_pylist(), strict=True))
        return found


class KnownKeys:
    """The keys a table holds, for the driver: the workers' look-ups plus what this run has added since."""

    def __init__(self, store: DatasetStore, table: str, column: str) -> None:
        self.store = store
        self.lookup = KeyLookup(table, column, frozenset(store.table_files(table)))  # before this run commits
        self.added: dict[str, str] = {}

    def holders(self, keys: Collection[str], looked_up: dict[str, str] | None) -> dict[str, str]:
        """The source key holding each of `keys` the dataset already has.

        `looked_up` is the worker's answer for the table as the run found it; None: look it up here.
        """
        found = {key: self.added[key] for key in keys if key in self.added}
        rest = [key for key in keys if key not in found]
        held = self.lookup.holders(self.store, rest) if looked_up is None else looked_up
        found.update((key, held[key]) for key in rest if key in held)
        return found

    def add(self, key: str, source_key: str) -> None:
        self.added[key] = source_key
