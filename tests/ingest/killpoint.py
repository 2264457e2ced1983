"""Run `radpipe ingest ARGS...` and SIGKILL its own process at a chosen point of the commit protocol.

Usage: python -m tests.ingest.killpoint POINT N ingest ARGS...  (see tests/ingest/test_kill_identifiers.py)

    before_commit N   the N-th batch's identifiers are stored, its commit manifest is not written
    mid_commit N      the N-th batch's manifest is written and its first table committed to Delta, the rest not
    after_commit N    right after the N-th commit
    after_last_commit every batch committed, volumes and studies not rebuilt, the store not merged
    mid_merge         the merged store entry is written, the batch entries not yet removed
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import radpipe.dataset.commit as commit_module
import radpipe.ingest.run as run_module
from radpipe.cli import main
from radpipe.deid.identifier_store import IdentifierStore


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _arm(point: str, n: int) -> None:
    commits = 0
    commit_moves, delta_commit, add = commit_module.commit_moves, commit_module.delta.commit, IdentifierStore.add

    def counting_commit(store: Any, batch_id: str, moves: Any, purge: bool = False) -> None:
        nonlocal commits
        commits += 1
        if point == "before_commit" and commits == n:
            _die()
        commit_moves(store, batch_id, moves, purge)
        if point == "after_commit" and commits == n:
            _die()

    def first_table_only(*args: Any, **kwargs: Any) -> None:
        delta_commit(*args, **kwargs)
        if point == "mid_commit" and commits == n:
            _die()

    def add_then_die(self: IdentifierStore, *args: Any, **kwargs: Any) -> None:
        add(self, *args, **kwargs)
        if point == "mid_merge":
            _die()

    def die_first(*args: Any, **kwargs: Any) -> Any:
        _die()

    commit_module.commit_moves = counting_commit
    commit_module.delta.commit = first_table_only
    IdentifierStore.add = add_then_die  # type: ignore[method-assign]
    if point == "after_last_commit":
        run_module.assemble_volumes = die_first


if __name__ == "__main__":
    _arm(sys.argv[1], int(sys.argv[2]))
    sys.exit(main(sys.argv[3:]))
