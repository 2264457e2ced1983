"""A Siemens mosaic becomes its slices, each placed in patient space (nibabel's real test files)."""

from __future__ import annotations

import numpy as np
import pydicom

from radpipe.deid import Deidentifier
from radpipe.dicom.mosaic import is_mosaic, unpack_tiles
from radpipe.ingest.dicom_file import IngestedInstance, process_dicom
from radpipe.preprocess import get_profile
from tests.corpora import corpus_path


def test_tiles_unpack_row_major_from_the_top_left() -> None:
    mosaic = np.zeros((6, 6), dtype=np.uint16)
    for k in range(7):  # 7 tiles of 2 x 2 in a 3 x 3 grid, two left blank
        r, c = divmod(k, 3)
        mosaic[2 * r : 2 * r + 2, 2 * c : 2 * c + 2] = k + 1
    tiles = unpack_tiles(mosaic, 7, 2, 2)
    assert tiles.shape == (7, 2, 2) and [int(t[0, 0]) for t in tiles] == list(range(1, 8))


def test_a_siemens_mosaic_is_ingested_as_its_slices(deid: Deidentifier) -> None:
    path = corpus_path("nibabel") / "siemens_dwi_0.dcm"
    source = pydicom.dcmread(path)
    assert is_mosaic(source) and (source.Rows, source.Columns) == (896, 896)
    result = process_dicom(path.read_bytes(), "k", "x", deid, get_profile("cxr-224"))
    assert isinstance(result, IngestedInstance) and result.instance["decoder"].endswith("+mosaic")
    assert len(result.slices) == 48 and all(s["shape"] == [128, 128] for s in result.slices)
    positions = np.array([s["position"] for s in result.slices])
    steps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    assert np.allclose(steps, 3.0, atol=0.01)  # slices 3 mm apart along the normal, not 48 copies of one
    tile = np.frombuffer(result.slices[20]["pixels"], result.slices[20]["dtype"])
    assert tile.size == 128 * 128  # (nibabel's test file carries blank pixels; the tiling is tested above)
