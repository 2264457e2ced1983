"""Ingest: DICOM and report archives into the Parquet dataset, incrementally and idempotently."""
