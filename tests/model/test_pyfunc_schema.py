"""The pyfunc's input schema as MLflow enforces it: files pass byte for byte."""

from __future__ import annotations

import pandas as pd
from mlflow.models.utils import _enforce_schema

from radpipe.model.pyfunc import INPUTS


def test_series_files_ending_in_nul_bytes_reach_the_model_whole() -> None:
    # An MR slice whose last pixels are air ends in zero bytes; MLflow's Array("binary") stripped them.
    files = [b"DICM\x01\x00\x00\x00", b"\x00\x00"]
    frame = pd.DataFrame({"series": [files, None], "dicom": [None, b"DICM\x00"]})
    enforced = _enforce_schema(frame, INPUTS)
    assert list(enforced["series"].iloc[0]) == files
    assert enforced["dicom"].iloc[1] == b"DICM\x00"
