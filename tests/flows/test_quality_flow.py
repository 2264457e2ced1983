import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.quality import ValidationFailed, curate_validate_flow
from radpipe.commands import phi_gate
from radpipe.dataset.store import DatasetStore
from radpipe.engine import SerialEngine
from radpipe.ingest.run import ingest
from radpipe.preprocess import get_profile
from radpipe.settings import get_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_flow_passes_a_good_dataset_and_fails_a_damaged_one(archive: Path, tmp_path: Path, deid) -> None:
    dataset = tmp_path / "dataset"
    ingest(
        str(archive / "dicom"),
        str(archive / "reports"),
        str(dataset),
        deid,
        get_profile("cxr-224"),
        SerialEngine(),
        home=get_settings().home,
    )
    phi_gate(str(dataset))
    result = curate_validate_flow(str(dataset))
    assert result["curation"]["patients_in_several_splits"] == 0
    assert Path(result["validation"]["data_docs"]).exists()

    damaged = tmp_path / "damaged"
    shutil.copytree(dataset, damaged)
    part = DatasetStore(str(damaged)).table_files("instances")[0]
    table = pq.read_table(part)
    rows = table.column("rows").to_pylist()
    rows[0] = -1
    pq.write_table(table.set_column(table.schema.get_field_index("rows"), "rows", pa.array(rows, pa.int32())), part)
    phi_gate(str(damaged))  # the damage holds no PHI: the gate passes, validation must catch it
    with pytest.raises(ValidationFailed, match=r"expect_column_values_to_be_between\(rows\)"):
        curate_validate_flow(str(damaged))
