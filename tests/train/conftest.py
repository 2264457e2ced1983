from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    """One local Ray instance for the session, with room for two workers and the loader."""
    import ray

    if ray.is_initialized():  # started by an earlier flow test with just enough CPUs for one worker
        ray.shutdown()
    ray.init(num_cpus=4, include_dashboard=True, dashboard_host="127.0.0.1", logging_level="WARNING")
    yield
    ray.shutdown()
