"""How MLflow's refusals reach the user: one TrackingError with MLflow's first line, never a traceback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from mlflow.exceptions import MlflowException

from radpipe.errors import RadpipeError


class TrackingError(RadpipeError):
    """The MLflow tracking server or registry refused a request."""


@contextmanager
def tracking_errors(action: str) -> Iterator[None]:
    try:
        yield
    except MlflowException as exc:
        message = str(exc.message if hasattr(exc, "message") else exc).strip().splitlines()
        raise TrackingError(
            f"MLflow refused to {action}: {message[0][:300] if message else type(exc).__name__}"
        ) from None


def now_ms() -> int:
    return int(time.time() * 1000)
