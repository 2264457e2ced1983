"""The loopback S3 server fixture: plain fsspec, configured only by the environment, reaches it."""

from __future__ import annotations

import fsspec
import pytest

from tests import s3server

s3_server = s3server.s3_server
s3_env = s3server.s3_env

pytestmark = pytest.mark.integration


def test_fsspec_round_trip_through_environment(s3_env: str) -> None:
    fs, root = fsspec.url_to_fs(s3_env)
    fs.pipe(f"{root}/a/one.txt", b"hello")
    with fsspec.open(f"{s3_env}a/b/two.txt", "wb") as handle:
        handle.write(b"two")

    assert fs.cat(f"{root}/a/one.txt") == b"hello"
    assert sorted(fs.ls(f"{root}/a", detail=False)) == [f"{root}/a/b", f"{root}/a/one.txt"]
    assert fs.find(root, withdirs=False) == [f"{root}/a/b/two.txt", f"{root}/a/one.txt"]

    fs.rm(f"{root}/a/one.txt")
    assert not fs.exists(f"{root}/a/one.txt")
