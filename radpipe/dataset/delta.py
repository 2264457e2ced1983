"""The Delta Lake adapter (delta-rs, `deltalake`): every table of a dataset is a Delta table.

radpipe writes its Parquet data files itself (workers stage them, row groups sized for the payload) and
publishes them with a Delta commit that adds them: delta-rs's `create_write_transaction`. A commit carries the
publishing batch's id as a Delta application transaction, so a commit retried after a crash is recognised as
done (`committed`) and never added twice. A data file in a table's folder that no commit names is invisible to
every Delta reader; `radpipe optimize` vacuums such files with the retained versions.

On an object store, delta-rs commits the next log entry with a conditional write (put-if-absent), so two
writers never overwrite each other's commit: the default of delta-rs's S3 backend since 0.22 where the store
supports it (S3 since 2024, SeaweedFS, MinIO). Credentials and endpoint come from the standard AWS variables,
read by delta-rs itself; nothing here puts them in a URI, log or error.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Schema, Transaction
from deltalake.exceptions import CommitFailedError, TableNotFoundError
from deltalake.transaction import AddAction, RemoveAction

from radpipe.errors import SourceError


@dataclass(frozen=True)
class DataFile:
    """A data file to add to a table: its path relative to the table's folder, size and rows."""

    path: str
    size: int
    rows: int


# No column statistics in the log: delta-rs's own writers (compaction) would otherwise copy the min and max of
# every column, report text included, into _delta_log/, where neither the PHI gate, erasure nor vacuum reach.
CONFIGURATION = {"delta.dataSkippingNumIndexedCols": "0"}


def protect(table: DeltaTable) -> None:
    """Set CONFIGURATION on a table made without it (before anything delta-rs writes itself)."""
    configured = table.metadata().configuration
    if any(configured.get(key) != value for key, value in CONFIGURATION.items()):
        table.alter.set_table_properties(CONFIGURATION, raise_if_not_exists=False)


def evolve(table: DeltaTable, schema: pa.Schema) -> None:
    """Add the columns radpipe's schema gained since the table was made (older files read them as null)."""
    known = {field.name for field in table.schema().fields}
    added = [field for field in Schema.from_arrow(schema).fields if field.name not in known]
    if added:
        table.alter.add_columns(added)
        table.update_incremental()


def storage_options(uri: str) -> dict[str, str]:
    """What delta-rs needs beyond the AWS environment: plain HTTP for a loopback endpoint."""
    if not uri.startswith(("s3://", "s3a://")):
        return {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
    options = {"AWS_ALLOW_HTTP": "true"} if endpoint.startswith("http://") else {}
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
    return options


def open_table(uri: str, version: int | None = None) -> DeltaTable | None:
    """The Delta table at `uri` (at `version`), or None when no table was ever committed there."""
    try:
        return DeltaTable(uri, version=version, storage_options=storage_options(uri))
    except TableNotFoundError:
        return None
    except OSError as exc:  # a pinned version that vacuum or erasure removed, or an unreadable log
        raise SourceError(f"cannot read the Delta table {uri!r} at version {version}: {exc}") from None


def files(table: DeltaTable) -> list[str]:
    """The data files of a table snapshot, relative to its folder, sorted."""
    actions = pa.table(table.get_add_actions(flatten=True))
    return sorted(str(p) for p in actions.column("path").to_pylist())


def committed(table: DeltaTable | None, batch_id: str) -> bool:
    """Whether a commit of `batch_id` is already in `table` (as loaded)."""
    return table is not None and table.transaction_version(batch_id) is not None


def create(uri: str, schema: pa.Schema) -> DeltaTable:
    """The table at `uri`, created with `schema` when there is none, once however many writers race to create it.

    delta-rs retries a create that lost the race for version 0 as the next version: a second CREATE TABLE with
    its own table id, protocol and metadata, which would undo any schema change or property set in between.
    Here the create is not retried; the loser opens the winner's table.
    """
    try:
        return DeltaTable.create(
            uri,
            schema=schema,
            mode="ignore",
            configuration=CONFIGURATION,
            storage_options=storage_options(uri),
            commit_properties=CommitProperties(max_commit_retries=0),
        )
    except CommitFailedError:
        table = open_table(uri)
        if table is None:
            raise
        return table


def commit(
    uri: str,
    schema: pa.Schema,
    batch_id: str,
    adds: Sequence[DataFile],
    removes: Iterable[str] = (),
    info: dict[str, Any] | None = None,
    table: DeltaTable | None = None,
) -> None:
    """Add `adds` and remove `removes` (paths relative to the table) in one Delta commit, once per batch.

    `table` is the table as already loaded (saves reading its log again); it is created when there is none.
    """
    if table is None:
        table = create(uri, schema)
    if committed(table, batch_id):
        return
    evolve(table, schema)
    now = int(time.time() * 1000)
    actions: list[AddAction | RemoveAction] = [
        AddAction(f.path, f.size, {}, now, True, json.dumps({"numRecords": f.rows})) for f in adds
    ]
    actions += [RemoveAction(path, True, now) for path in removes]
    properties = CommitProperties(
        app_transactions=[Transaction(batch_id, 1)], custom_metadata={"radpipe.batch": batch_id, **(info or {})}
    )
    table.create_write_transaction(actions, "append", schema, commit_properties=properties)
