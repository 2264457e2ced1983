"""The ops view: one row per flow run in RADPIPE_HOME/ops/, and a self-contained HTML dashboard over it."""

from radpipe.ops.row import OpsRow, ops_row
from radpipe.ops.table import OPS_SCHEMA, append_ops_row, read_ops

__all__ = ["OPS_SCHEMA", "OpsRow", "append_ops_row", "ops_row", "read_ops"]
