import json
import os

import pytest

from radpipe.dataset.guard import LOCK_FILE, DatasetBusy, check_key, dataset_lock
from radpipe.dataset.store import DatasetStore
from radpipe.errors import ConfigError


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path) -> None:
    store = DatasetStore(str(tmp_path))
    with dataset_lock(store, "run-1"):
        with pytest.raises(DatasetBusy, match="being written by another run"):
            with dataset_lock(store, "run-2"):
                pass
    assert not (tmp_path / LOCK_FILE).exists()


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
