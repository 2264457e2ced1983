"""The one place that reads the environment (CONTRACT.md, "Settings")."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from radpipe.errors import ConfigError


class Settings(BaseSettings):
    """Environment settings, read once; every field has the CONTRACT.md default."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    # Local state: MLflow SQLite file, Dask/Ray scratch, the generated de-identification key.
    radpipe_home: Path = Field(default=Path(".radpipe"), alias="RADPIPE_HOME")
    # Secret for pseudonyms and date shifts; unset means "generate once into RADPIPE_HOME".
    radpipe_deid_key: str | None = Field(default=None, alias="RADPIPE_DEID_KEY", repr=False)
    # An existing Dask scheduler (tcp://host:8786); unset means a local cluster per command.
    radpipe_dask_address: str | None = Field(default=None, alias="RADPIPE_DASK_ADDRESS")
    # Local Dask workers when no address is given; 0 means one per core.
    radpipe_dask_workers: int = Field(default=0, alias="RADPIPE_DASK_WORKERS", ge=0)
    # Modalities (comma-separated, or "all") an operator has checked for burned-in text; see deid/burned_in.py.
    radpipe_burned_in_allow: str = Field(default="", alias="RADPIPE_BURNED_IN_ALLOW")
    # Keep an operator-only log (mode 0600, under RADPIPE_HOME/operator) of quarantined files' clear paths.
    # Off by default: with it on, RADPIPE_HOME holds source paths, which can hold names.
    radpipe_log_quarantined_paths: bool = Field(default=False, alias="RADPIPE_LOG_QUARANTINED_PATHS")
    # The fraction of a run's records (instances and reports) the PHI gate may withhold before the run fails: a few
    # withheld reports are a missed form, many are a broken scrubber (or the wrong data).
    radpipe_phi_max_withheld: float = Field(default=0.01, alias="RADPIPE_PHI_MAX_WITHHELD", ge=0, le=1)
    # How long a run that finds its dataset locked by another run waits for it before failing "busy".
    radpipe_lock_wait: float = Field(default=3600.0, alias="RADPIPE_LOCK_WAIT", ge=0)
    # How long `radpipe optimize` keeps table versions readable (DATASET@VERSION) before vacuum deletes their files.
    radpipe_retention_days: float = Field(default=30.0, alias="RADPIPE_RETENTION_DAYS", ge=0)
    # Any MLflow tracking server; unset means a SQLite file under RADPIPE_HOME (MLflow 3 refuses the file store).
    mlflow_tracking_uri: str | None = Field(default=None, alias="MLFLOW_TRACKING_URI")
    # An existing Ray cluster (ray://host:10001 or auto); unset means a local Ray instance per command.
    ray_address: str | None = Field(default=None, alias="RAY_ADDRESS")
    # Where Ray Train keeps checkpoints; on a cluster, storage every node reaches (s3://..., NFS).
    radpipe_ray_storage: str | None = Field(default=None, alias="RADPIPE_RAY_STORAGE")

    @property
    def burned_in_allowed(self) -> frozenset[str]:
        return frozenset(m.strip().upper() for m in self.radpipe_burned_in_allow.split(",") if m.strip())

    @property
    def home(self) -> Path:
        return self.radpipe_home.expanduser().resolve()

    @property
    def ray_storage(self) -> str:
        return self.radpipe_ray_storage or str(self.home / "ray-results")

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use; a bad value is a ConfigError."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'setting'}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(f"invalid setting ({problems})") from None
