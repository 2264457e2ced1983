"""Run `radpipe ingest ARGS...` and SIGKILL its own process at a chosen point of the commit protocol.

Usage: python -m tests.ingest.killpoint POINT N ingest ARGS...  (see tests/ingest/test_kill_identifiers.py)

    before_commit N   the N-th batch's identifiers are stored, its commit manifest is not written
    mid_commit N      the N-th batch's manifest is written and one of its files moved, the rest not
    after_commit N    right after the N-th commit
    after_last_commit every batch committed, volumes and studies not rebuilt, the store not merged
    mid_merge         the merged store entry is written, the batch entries not yet removed
"""

from __future__ import annotations

import os
import posixpath
import signal
import sys
from typing import Any

import radpipe.dataset.store as store_module
import radpipe.ingest.run as run_module
from radpipe.cli import main
from radpipe.deid.identifier_store import IdentifierStore


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _arm(point: str, n: int) -> None:
    commits = 0
    commit_moves, apply, add = store_module.commit_moves, store_module._apply, IdentifierStore.add

    def counting_commit(store: Any, batch_id: str, moves: Any) -> None:
        nonlocal commits
        commits += 1
        if point == "before_commit" and commits == n:
            _die()
        commit_moves(store, batch_id, moves)
        if point == "after_commit" and commits == n:
            _die()

    def partial_apply(store: Any, batch_id: str, moves: Any) -> None:
        moves = list(moves)
        if point == "mid_commit" and commits == n:
            staged, final = moves[0]
            store.fs.makedirs(posixpath.dirname(store.path(final)), exist_ok=True)
            store.fs.mv(store.path(staged), store.path(final))
            _die()
        apply(store, batch_id, moves)

    def add_then_die(self: IdentifierStore, *args: Any, **kwargs: Any) -> None:
        add(self, *args, **kwargs)
        if point == "mid_merge":
            _die()

    def die_first(*args: Any, **kwargs: Any) -> Any:
        _die()

    store_module.commit_moves = counting_commit
    store_module._apply = partial_apply
    IdentifierStore.add = add_then_die  # type: ignore[method-assign]
    if point == "after_last_commit":
        run_module.assemble_volumes = die_first


if __name__ == "__main__":
    _arm(sys.argv[1], int(sys.argv[2]))
    sys.exit(main(sys.argv[3:]))
