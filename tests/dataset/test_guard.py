import json
import os
import time

import pytest

from radpipe.dataset.guard import LOCK_FILE, DatasetBusy, check_key, dataset_lock
from radpipe.dataset.store import DatasetStore
from radpipe.errors import ConfigError


def test_a_second_writer_is_refused_once_its_wait_runs_out(tmp_path) -> None:
    store = DatasetStore(str(tmp_path))
    with dataset_lock(store, "run-1"):
        with pytest.raises(DatasetBusy, match="being written by another run"):
            with dataset_lock(store, "run-2", wait=0):
                pass
        started = time.monotonic()
        with pytest.raises(DatasetBusy, match="RADPIPE_LOCK_WAIT"):
            with dataset_lock(store, "run-2", wait=0.5):
                pass
        assert time.monotonic() - started >= 0.5  # it waited before giving up
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_waiting_writer_takes_the_lock_when_the_first_lets_go(tmp_path) -> None:
    import threading

    store = DatasetStore(str(tmp_path))
    order: list[str] = []
    first_holds = threading.Event()

    def first() -> None:
        with dataset_lock(store, "run-1"):
            first_holds.set()
            time.sleep(0.6)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    first_holds.wait()
    with dataset_lock(store, "run-2", wait=30):
        order.append("second in")
    thread.join()
    assert order == ["first done", "second in"]


def test_a_dead_runs_lock_is_taken_over(tmp_path) -> None:
    import socket

    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname()}))
    store = DatasetStore(str(tmp_path))
    with dataset_lock(store, "run-3"):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_another_key_is_refused_before_anything_is_written(tmp_path) -> None:
    store = DatasetStore(str(tmp_path))
    check_key(store, b"k" * 32)
    check_key(store, b"k" * 32)  # the same key again is fine
    with pytest.raises(ConfigError, match="another de-identification key"):
        check_key(store, b"j" * 32)
