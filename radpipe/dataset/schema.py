"""Arrow schemas of the dataset tables (CONTRACT.md, "The dataset")."""

from __future__ import annotations

import pyarrow as pa

from radpipe.reports.label_rules import LABELS

LABELS_TYPE = pa.struct([pa.field(label, pa.int8()) for label in LABELS])

INSTANCES = pa.schema(
    [
        ("sop_instance_uid", pa.string()),
        ("series_instance_uid", pa.string()),
        ("study_instance_uid", pa.string()),
        ("sop_class_uid", pa.string()),
        ("patient_id", pa.string()),
        ("accession_number", pa.string()),
        ("modality", pa.string()),
        ("body_part", pa.string()),
        ("view_position", pa.string()),
        ("rows", pa.int32()),
        ("columns", pa.int32()),
        ("number_of_frames", pa.int32()),
        ("samples_per_pixel", pa.int16()),
        ("pixel_spacing", pa.list_(pa.float64())),
        ("photometric_interpretation", pa.string()),
        ("bits_allocated", pa.int16()),
        ("bits_stored", pa.int16()),
        ("transfer_syntax_uid", pa.string()),
        ("manufacturer", pa.string()),
        ("study_date", pa.string()),
        ("content_hash", pa.string()),
        ("decoder", pa.string()),
        ("is_synthetic", pa.bool_()),
        ("source_key", pa.string()),
        ("batch_id", pa.string()),
    ]
)

IMAGES = pa.schema(
    [
        ("sop_instance_uid", pa.string()),
        ("study_instance_uid", pa.string()),
        ("pixels", pa.binary()),
        ("shape", pa.list_(pa.int32())),
        ("dtype", pa.string()),
        ("profile", pa.string()),
    ]
)

# One row per slice (a single-frame instance, or one frame of an enhanced multi-frame object) of a CT/MR
# series, in HU (MR: stored values), at source resolution: what volumes/ is assembled from, and re-assembled
# from when more of a series arrives in a later run.
SLICES = pa.schema(
    [
        ("sop_instance_uid", pa.string()),
        ("frame", pa.int32()),  # 0 for single-frame instances
        ("series_instance_uid", pa.string()),
        ("study_instance_uid", pa.string()),
        ("modality", pa.string()),
        ("position", pa.list_(pa.float64())),  # ImagePositionPatient (LPS, mm)
        ("orientation", pa.list_(pa.float64())),  # ImageOrientationPatient
        ("pixel_spacing", pa.list_(pa.float64())),  # (row, column) mm
        ("temporal_position", pa.int32()),  # the time point of a 4D acquisition; null for 3D
        # the sub-volume of an enhanced object apart from time: stack rank and other dimension indexes
        # ("1", "2", "1/DiffusionBValue=2"); null for single-frame slices
        ("stack", pa.string()),
        ("pixels", pa.binary()),  # modality values after the rescale, int16 little-endian, rows x columns
        ("shape", pa.list_(pa.int32())),
        ("dtype", pa.string()),
        ("batch_id", pa.string()),
    ]
)

# One row per CT/MR series (CONTRACT.md): the volume resampled to the profile's spacing and size, or, when
# its geometry is not sound, no pixels and the issues that stopped it (kept, never silently assembled).
VOLUMES = pa.schema(
    [
        ("series_instance_uid", pa.string()),
        ("study_instance_uid", pa.string()),
        ("modality", pa.string()),
        ("pixels", pa.binary()),  # int16 little-endian, shape (D, H, W); null when `issues` is not empty
        ("shape", pa.list_(pa.int32())),
        ("dtype", pa.string()),
        ("spacing", pa.list_(pa.float64())),  # (z, y, x) mm: the profile's
        ("source_spacing", pa.list_(pa.float64())),  # (z, y, x) mm as acquired
        # 4x4 row-major: voxel index (z, y, x, 1) -> patient LPS mm; null when not assembled
        ("affine", pa.list_(pa.float64())),
        ("n_slices", pa.int32()),
        ("time_points", pa.int32()),  # a 4D series' time points: the first is assembled, the count kept
        ("stacks", pa.int32()),  # sub-volumes (stacks, b-values, echoes): the largest is assembled, the count kept
        ("issues", pa.list_(pa.string())),  # geometry issues (kind: detail); empty when assembled
        ("profile", pa.string()),  # a volume profile: its windows make the model's channels
        ("assembled_at", pa.string()),
    ]
)

REPORTS = pa.schema(
    [
        ("report_id", pa.string()),
        ("study_instance_uid", pa.string()),
        ("accession_number", pa.string()),
        ("patient_id", pa.string()),
        ("report_date", pa.string()),
        ("text", pa.string()),
        ("indication", pa.string()),
        ("findings", pa.string()),
        ("impression", pa.string()),
        ("rationale", pa.string()),
        ("labels", LABELS_TYPE),
        ("language", pa.string()),  # en | es | und: labels come from that language's rules; null labels otherwise
        ("source_key", pa.string()),
        ("batch_id", pa.string()),
    ]
)

STUDIES = pa.schema(
    [
        ("study_instance_uid", pa.string()),
        ("patient_id", pa.string()),
        ("accession_number", pa.string()),
        ("split", pa.string()),
        ("n_images", pa.int32()),
        ("n_volumes", pa.int32()),
        ("has_report", pa.bool_()),
        ("report_id", pa.string()),
        ("is_synthetic", pa.bool_()),
    ]
)

QUARANTINE = pa.schema(
    [
        ("source_key", pa.string()),
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("position", pa.int64()),  # report line/element number; 0 for a whole file
        ("batch_id", pa.string()),
    ]
)

LEDGER = pa.schema(
    [
        ("source_key", pa.string()),
        ("kind", pa.string()),  # dicom | report
        ("size", pa.int64()),
        ("mtime", pa.string()),  # any change marker the filesystem gives (mtime, ETag)
        ("outcome", pa.string()),  # ingested | unchanged | quarantined:<reason> | reports:<n>
        ("records", pa.int64()),  # report files: records read, so a grown file is not re-quarantined
        ("batch_id", pa.string()),
        ("committed_at", pa.string()),
    ]
)

# Records the PHI gate withheld (radpipe/deid/withhold.py): their files are read again by every ingest until a
# rule change lets them through. `tag` is a keyed hash of the record's key (the key itself may be the leak).
WITHHELD = pa.schema(
    [
        ("tag", pa.string()),
        ("source_key", pa.string()),
        ("table", pa.string()),
        ("reason", pa.string()),
        ("withheld_at", pa.string()),
        ("batch_id", pa.string()),
    ]
)

ERASURES = pa.schema(
    [
        ("erasure_id", pa.string()),
        ("erased_at", pa.string()),
        ("keys", pa.list_(pa.string())),  # pseudonyms (patient, accessions, studies) never ingested again
        ("rows_removed", pa.string()),  # JSON: table -> rows
    ]
)

CURATION = pa.schema(
    [
        ("sop_instance_uid", pa.string()),
        ("study_instance_uid", pa.string()),
        ("phash", pa.string()),  # 256-bit perceptual (DCT) hash of the image, hex
        ("duplicate_of", pa.string()),  # the kept representative's sop_instance_uid
        ("duplicate_kind", pa.string()),  # exact | near | semantic
        ("prune", pa.bool_()),  # the training data loader skips pruned images
        ("prune_reason", pa.string()),
    ]
)

# Written by `radpipe embed` (radpipe/model/embed_dataset.py): the input of semantic pruning and retrieval. Not part of
# the dataset version: it is derived from a model, and curation/ records what it was used for.
EMBEDDINGS = pa.schema(
    [
        ("sop_instance_uid", pa.string()),
        ("study_instance_uid", pa.string()),
        ("embedding", pa.list_(pa.float32())),  # unit norm, the model's embed_dim
        ("model", pa.string()),  # the registered version that made it: models:/<name>/<version>
    ]
)

TABLES: dict[str, pa.Schema] = {
    "instances": INSTANCES,
    "images": IMAGES,
    "reports": REPORTS,
    "studies": STUDIES,
    "quarantine": QUARANTINE,
    "_ledger": LEDGER,
    "_erasures": ERASURES,
    "_withheld": WITHHELD,
    "curation": CURATION,
    "slices": SLICES,
    "volumes": VOLUMES,
    "embeddings": EMBEDDINGS,
}
# Columns holding pixel payloads: no statistics, no dictionary, no compression (it does not pay on pixels).
PAYLOAD_COLUMNS = ("pixels",)
