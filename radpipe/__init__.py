"""radpipe: from a DICOM + report archive to a trained, registered radiology foundation model."""

__version__ = "0.1.0"
