"""DICOM: coded values, header extraction and pixel decoding (pure functions over pydicom objects)."""
