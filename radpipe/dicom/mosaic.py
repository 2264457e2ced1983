"""Siemens mosaics: many slices tiled into one image, placed by a private (CSA) header.

The CSA header is private, so de-identification removes it: the tiles' geometry is read first, on the
source header, with nibabel's reader (the maintained one), and carried past the seam as plain numbers.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from pydicom.dataset import Dataset

from radpipe.dicom.geometry import GeometryError, SliceGeometry


def is_mosaic(ds: Dataset) -> bool:
    image_type = ds.get("ImageType") or []
    return any(str(value).upper() == "MOSAIC" for value in image_type)


def mosaic_geometries(ds: Dataset) -> list[SliceGeometry]:
    """One geometry per tile, in tile order; GeometryError when the header cannot place them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nibabel warns that its readers are experimental, on import and use
        from nibabel.nicom import dicomwrappers

        try:
            wrapper = dicomwrappers.wrapper_from_data(ds)
            if not isinstance(wrapper, dicomwrappers.MosaicWrapper):
                raise GeometryError("MOSAIC image without the Siemens header that places its tiles")
            count = int(wrapper.n_mosaic)
            affine = np.asarray(wrapper.affine, dtype=np.float64)
        except GeometryError:
            raise
        except Exception as exc:  # nibabel raises many types for a header it cannot read
            raise GeometryError(f"MOSAIC header unreadable ({type(exc).__name__})") from None
    side = math.ceil(math.sqrt(count))
    rows, columns = int(ds.Rows) // side, int(ds.Columns) // side
    orientation = tuple(float(v) for v in ds.ImageOrientationPatient)
    spacing = tuple(float(v) for v in ds.PixelSpacing)
    slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    return [
        SliceGeometry(
            position=tuple(float(v) for v in (affine @ np.array([0.0, 0.0, k, 1.0]))[:3]),  # type: ignore[arg-type]
            orientation=orientation,  # type: ignore[arg-type]
            pixel_spacing=spacing,  # type: ignore[arg-type]
            rows=rows,
            columns=columns,
            slice_thickness=None,
            instance_number=k + 1,
            rescale_slope=slope,
            rescale_intercept=intercept,
        )
        for k in range(count)
    ]


def unpack_tiles(mosaic: np.ndarray, count: int, rows: int, columns: int) -> np.ndarray:
    """The tiles of a (R, C) mosaic as (count, rows, columns), row-major from the top left."""
    side = math.ceil(math.sqrt(count))
    tiles = mosaic[: side * rows, : side * columns].reshape(side, rows, side, columns).swapaxes(1, 2)
    return tiles.reshape(side * side, rows, columns)[:count]
