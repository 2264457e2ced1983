"""Guards around a dataset: one writer at a time, and one de-identification key for its whole life."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from radpipe.dataset.store import DatasetStore
from radpipe.errors import ConfigError, RadpipeError

LOCK_FILE = "_lock"
log = logging.getLogger("radpipe")
META_FILE = "_meta.json"


class DatasetBusy(RadpipeError):
    """Another run holds the dataset's lock."""


def key_fingerprint(key: bytes) -> str:
    """Identifies a key without revealing it (a keyed hash of a constant)."""
    return hmac.new(key, b"radpipe-key-check", hashlib.sha256).hexdigest()[:16]


def check_key(store: DatasetStore, key: bytes) -> str:
    """Record the key's fingerprint on first write; refuse a different key afterwards.

    With another key every pseudonym and source key changes, so a run would double every row
    and split every patient in two: that must stop before anything is written. Returns the
    dataset's id (a random name for its operator-side state under RADPIPE_HOME).
    """
    meta_path = store.path(META_FILE)
    fingerprint = key_fingerprint(key)
    meta: dict[str, object] = {}
    if store.fs.exists(meta_path):
        with store.fs.open(meta_path, "r") as fh:
            meta = json.load(fh)
        recorded = meta.get("key_fingerprint")
        if recorded and recorded != fingerprint:
            raise ConfigError(
                f"{store.uri} was written with another de-identification key; set RADPIPE_DEID_KEY (or "
                "RADPIPE_HOME) to the key it was created with"
            )
        if meta.get("dataset_id"):
            return str(meta["dataset_id"])
    meta.update({"key_fingerprint": fingerprint, "dataset_id": uuid.uuid4().hex, "format": 2})  # 2: Delta tables
    temporary = meta_path + ".tmp"
    with store.fs.open(temporary, "w") as fh:
        json.dump(meta, fh)
    store.fs.mv(temporary, meta_path)
    return str(meta["dataset_id"])


def read_meta(store: DatasetStore) -> dict[str, object]:
    """The dataset's _meta.json (key fingerprint, id, format); empty for a folder that is not a radpipe dataset."""
    meta_path = store.path(META_FILE)
    if not store.fs.exists(meta_path):
        return {}
    with store.fs.open(meta_path, "r") as fh:
        meta: dict[str, object] = json.load(fh)
        return meta


def dataset_id(store: DatasetStore) -> str | None:
    """The id recorded by the first ingest, or None for a folder that is not a radpipe dataset."""
    found = read_meta(store).get("dataset_id")
    return None if found is None else str(found)


def _holder_alive(holder: dict[str, object]) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # cannot tell for another host: assume it is alive
    try:
        os.kill(int(str(holder.get("pid"))), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def _create_exclusive(store: DatasetStore, path: str, content: bytes) -> None:
    """Create `path` only if it does not exist (FileExistsError otherwise).

    Local disks and object stores with conditional writes do this atomically. A store without them (the
    write fails with another OSError) gets write-then-read-back: two runs that start within one round trip
    may both believe they hold the lock. Concurrent writers on such a store need the Delta commits of
    issue 14; one writer at a time is safe.
    """
    try:
        with store.fs.open(path, "xb") as fh:
            fh.write(content)
        return
    except FileExistsError:
        raise
    except (OSError, ValueError, NotImplementedError):
        pass  # no exclusive create on this store
    if store.fs.exists(path):
        raise FileExistsError(path)
    with store.fs.open(path, "wb") as fh:
        fh.write(content)
    store.fs.invalidate_cache(path)
    if store.fs.cat_file(path) != content:
        raise FileExistsError(path)


@contextmanager
def dataset_lock(store: DatasetStore, run_id: str, wait: float | None = None) -> Iterator[None]:
    """Hold the dataset's write lock for a run; a dead holder's lock (same host) is taken over.

    A run that finds the lock held waits up to `wait` seconds (default RADPIPE_LOCK_WAIT) for the holder to
    finish, then fails with DatasetBusy: two ingests started together into one dataset both commit, one
    after the other.
    """
    if wait is None:
        from radpipe.settings import get_settings

        wait = get_settings().radpipe_lock_wait
    if store.version is not None:
        raise ConfigError(f"{store.uri}@{store.version} is a past version of the dataset: read it, write the dataset")
    lock_path = store.path(LOCK_FILE)
    me = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname()}
    store.fs.makedirs(store.root, exist_ok=True)
    deadline, delay, announced = time.monotonic() + wait, 0.2, False
    while (holder := _try_lock(store, lock_path, me)) is not None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DatasetBusy(
                f"{store.uri} is being written by another run (pid {holder.get('pid')} on {holder.get('host')}); "
                f"wait for it (RADPIPE_LOCK_WAIT), or remove {lock_path} if that run is gone"
            )
        if not announced:
            log.warning("the dataset is being written by another run: waiting up to %.0f s for it", wait)
            announced = True
        time.sleep(min(delay, left))
        delay = min(delay * 2, 5.0)
    try:
        yield
    finally:
        store.fs.rm(lock_path)


def _try_lock(store: DatasetStore, lock_path: str, me: dict[str, object]) -> dict[str, object] | None:
    """Take the lock (None), or say who holds it; a dead holder's lock is removed and taken."""
    for _ in range(2):
        try:
            _create_exclusive(store, lock_path, json.dumps(me).encode())
            return None
        except FileExistsError:
            pass
        try:
            with store.fs.open(lock_path, "rb") as fh:
                holder = json.loads(fh.read() or b"{}")
        except FileNotFoundError:
            continue  # released between the two calls: try again
        except ValueError:
            holder = {}  # being written this instant, or torn: alive until proved otherwise
        if _holder_alive(holder):
            return dict(holder)
        store.fs.rm(lock_path)
    return {}
