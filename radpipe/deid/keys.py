"""The de-identification secret: from RADPIPE_DEID_KEY, or generated once into RADPIPE_HOME."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from radpipe.errors import ConfigError

KEY_FILE_NAME = "deid.key"
MIN_KEY_BYTES = 16
log = logging.getLogger(__name__)


def load_key(env_value: str | None, home: Path) -> bytes:
    """Return the secret: the environment value if set, else the key file, created on first use.

    A key file that group or others can read is refused: whoever reads it can reverse pseudonyms
    by brute force over plausible identifiers.
    """
    if env_value:
        key = env_value.encode()
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(f"RADPIPE_DEID_KEY is too short: use at least {MIN_KEY_BYTES} characters")
        return key
    path = home / KEY_FILE_NAME
    if not path.exists():
        try:
            home.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot create the key in RADPIPE_HOME={home}: {exc.strerror}") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        log.warning("created a new de-identification key at %s (mode 0600); back it up", path)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"refusing key file {path}: readable by others (run: chmod 600 {path})")
    key = path.read_text().strip().encode()
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"key file {path} holds fewer than {MIN_KEY_BYTES} characters")
    return key
