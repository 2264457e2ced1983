"""What each command does, built from settings: the shared steps the CLI and the flows call (no Prefect here)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from radpipe.dataset.commit import recover
from radpipe.dataset.guard import check_key, dataset_id, dataset_lock
from radpipe.dataset.legacy import upgrade
from radpipe.dataset.optimize import OptimizeSummary, optimize_tables
from radpipe.dataset.store import DatasetStore
from radpipe.deid import Deidentifier, Pseudonymizer, load_key
from radpipe.deid.erasure import ErasureSummary, erase_patient
from radpipe.deid.gate import (
    PhiGateFailed,
    carry_gate,
    describe,
    gated_version,
    record_result,
    require_gate_passed,
    scan,
    scan_state,
    vouched_state,
)
from radpipe.deid.identifier_store import IdentifierStore
from radpipe.deid.withhold import WITHHELD_TABLE, Withheld, withhold
from radpipe.errors import SourceError
from radpipe.ingest.run import IngestSummary, ProgressCallback, check_sources, ingest
from radpipe.ingest.studies import rebuild_studies
from radpipe.ingest.volumes import assemble_volumes
from radpipe.preprocess import get_profile
from radpipe.preprocess.volume import get_volume_profile
from radpipe.settings import Settings, get_settings

if TYPE_CHECKING:  # Dask, validation (pandas, GX) and curation load only for the commands that use them
    from radpipe.curate.run import CurationSummary
    from radpipe.curate.semantic import SemanticRule
    from radpipe.engine.dask import DaskEngine
    from radpipe.evaluate.promotion import PromotionSummary
    from radpipe.evaluate.run import EvaluationSummary
    from radpipe.finetune.report import ReportFinetuneSummary
    from radpipe.finetune.run import FinetuneSummary
    from radpipe.model.embed_dataset import EmbeddingSummary
    from radpipe.quality.validate import ValidationReport
    from radpipe.train.run import TrainSummary


def deidentifier(settings: Settings | None = None) -> Deidentifier:
    settings = settings or get_settings()
    key = load_key(settings.radpipe_deid_key, settings.home)
    return Deidentifier(Pseudonymizer(key), burned_in_allowed=settings.burned_in_allowed)


@contextmanager
def engine(settings: Settings | None = None) -> Iterator[DaskEngine]:
    from radpipe.engine.dask import dask_engine

    settings = settings or get_settings()
    with dask_engine(settings.radpipe_dask_address, settings.radpipe_dask_workers, settings.home / "dask") as e:
        yield e


DEFAULT_FINETUNES = ("pneumothorax",)  # what `radpipe pipeline` fine-tunes unless told


def check_chain_arguments(
    labels: list[str], shots: int | None, metric: str | None, profile: str, config: str | None
) -> None:
    """Everything the late steps of the chain would refuse, refused before the first one starts."""
    from radpipe.evaluate.promotion import DEFAULT_METRIC, higher_is_better
    from radpipe.finetune.config import finding_label, finetune_config
    from radpipe.model.config import load_config

    get_profile(profile)
    load_config(config)
    higher_is_better(metric or DEFAULT_METRIC)
    finetune_config(shots=shots)
    for label in labels:
        finding_label(label)


def open_dataset(uri: str, key: bytes | None = None, gate: bool = False) -> DatasetStore:
    """The dataset at `uri`, checked: a radpipe dataset, keyed with `key` (when given), its PHI gate passed (`gate`)."""
    store = DatasetStore(uri)
    if dataset_id(store) is None:
        raise SourceError(f"not a radpipe dataset (no _meta.json): {uri}")
    upgrade(store)  # a dataset written before Delta tables: its files become each table's first version
    if key is not None:
        check_key(store, key)  # another key would find no one, reshuffle patients, or pseudonymise differently
    if gate:
        require_gate_passed(store)
    return store


def ingest_sources(
    dicom: str | None,
    reports: str | None,
    dataset: str,
    profile_name: str,
    on_progress: ProgressCallback | None = None,
    gate: bool = True,
    volume_profiles: dict[str, str] | None = None,
    dicom_manifest: str | None = None,
) -> IngestSummary:
    """Ingest with the configured key and Dask engine, then (by default) the PHI gate."""
    settings = get_settings()
    profile = get_profile(profile_name)
    for name in (volume_profiles or {}).values():
        get_volume_profile(name)  # an unknown name fails now, not after the whole archive is read
    check_sources(dicom, reports, dataset)  # before a cluster starts: a typo should cost a second, not ten
    if dicom_manifest and not dicom:
        raise SourceError("a manifest lists DICOM objects under a source: give the --dicom source too")
    deid = deidentifier(settings)
    with engine(settings) as dask:
        summary = ingest(
            dicom,
            reports,
            dataset,
            deid,
            profile,
            dask,
            on_progress,
            home=settings.home,
            log_quarantined_paths=settings.radpipe_log_quarantined_paths,
            volume_profiles=volume_profiles,
            dicom_manifest=dicom_manifest,
        )
    if gate:
        summary.withheld = phi_gate(dataset, summary.instances_added + summary.reports_added, volume_profiles).by_reason
    return summary


def phi_gate(dataset: str, run_records: int | None = None, volume_profiles: dict[str, str] | None = None) -> Withheld:
    """Scan the dataset for identifiers seen in its sources and withhold each record holding one.

    Raises PhiGateFailed when the identifier store lacks a committed batch's identifiers, when a hit cannot be
    withheld, or when the withheld records pass RADPIPE_PHI_MAX_WITHHELD of `run_records` (the records the
    run added; the dataset's records when None): a broken scrubber still stops everything. The result is
    written to DATASET/_gate.json either way; messages name tables, columns and kinds only.
    """
    settings = get_settings()
    store = open_dataset(dataset)
    deid = deidentifier(settings)
    identity = check_key(store, deid.pseudonymizer.key)
    identifiers = IdentifierStore(settings.home, identity)
    with dataset_lock(store, "phi-gate"):
        recover(store)  # a withholding killed half way is finished before anything is read or withheld again
        vouched = vouched_state(store)
        found = scan(store, deid.pseudonymizer, identifiers, vouched)
        withheld = Withheld()
        remaining = found.hits
        if found.offending or store.table_files(WITHHELD_TABLE):  # withhold new hits, release what now passes
            withheld = withhold(store, deid.pseudonymizer, found.offending)
            if withheld.instances or withheld.released:
                assemble_volumes(store, volume_profiles)
                rebuild_studies(store)
            # Whatever the withholding rewrote (volumes/ and studies/ too) is read again before the gate vouches.
            remaining = scan(store, deid.pseudonymizer, identifiers, vouched).hits if withheld.committed else []
        limit = settings.radpipe_phi_max_withheld
        fraction = withheld.new / max(1, found.records if run_records is None else run_records)
        refused = ""
        if remaining:
            refused = f"source identifiers remain after withholding, in {describe(remaining)}"
        elif fraction > limit:
            refused = (
                f"{withheld.new} records withheld for identifiers ({describe(found.hits)}), {fraction:.1%} of "
                f"the run, above RADPIPE_PHI_MAX_WITHHELD={limit:g}: a scrubber rule is broken or the data is not "
                "what it seems"
            )
        state = scan_state(store, identifiers)
        record_result(store, remaining, refused=refused, withheld=dict(withheld.by_reason), state=state)
    if refused:
        raise PhiGateFailed(f"PHI gate failed: {refused}; nothing may read it")
    return withheld


def erase(dataset: str, source_patient_id: str) -> ErasureSummary:
    """Erase one patient's rows from every table (key holder), under the dataset lock."""
    deid = deidentifier()
    store = open_dataset(dataset, key=deid.pseudonymizer.key)
    with dataset_lock(store, "erase"):
        recover(store)
        summary = erase_patient(store, deid.pseudonymizer, source_patient_id)
        rebuild_studies(store)
    phi_gate(dataset)  # the tables changed: gate them again so downstream steps accept them
    return summary


def optimize(dataset: str, retention_days: float | None = None) -> OptimizeSummary:
    """Compact small files and vacuum versions past retention, under the dataset lock.

    Compaction changes no row, so a dataset version that had passed the PHI gate and validation before stays
    passed: both records are carried to the compacted version.
    """
    from radpipe.quality.status import carry_validation, dataset_version

    settings = get_settings()
    store = open_dataset(dataset)
    with dataset_lock(store, "optimize"):
        recover(store)
        before, gate_before = dataset_version(store), gated_version(store)
        studies = _sorted_rows(store, "studies")
        summary = optimize_tables(store, settings.radpipe_retention_days if retention_days is None else retention_days)
        rebuild_studies(store)  # its inputs have new table versions: derive it now, as the next ingest would
        carry_gate(store, gate_before)
        if _sorted_rows(store, "studies") == studies:  # nothing but file layout changed
            carry_validation(store, before, dataset_version(store))
    return summary


def _sorted_rows(store: DatasetStore, table: str) -> list[str]:
    return sorted(map(repr, store.read_table(table).to_pylist()))


def validate(dataset: str, on_batch: Callable[[str], None] | None = None) -> ValidationReport:
    """Validate a dataset (local or object storage) with the expectation suites (see radpipe/quality)."""
    from radpipe.quality.validate import validate_dataset

    return validate_dataset(dataset, on_batch=on_batch)


def curate_dataset(
    dataset: str, near_threshold: int | None = None, semantic: SemanticRule | None = None
) -> CurationSummary:
    """Splits, duplicates and prune flags, under the dataset lock, with the dataset's own key."""
    from radpipe.curate.run import DEFAULT_NEAR_THRESHOLD, curate

    deid = deidentifier()
    store = open_dataset(dataset, key=deid.pseudonymizer.key, gate=True)
    with dataset_lock(store, "curate"):
        recover(store)
        threshold = DEFAULT_NEAR_THRESHOLD if near_threshold is None else near_threshold
        return curate(dataset, deid.pseudonymizer, near_threshold=threshold, semantic=semantic)


def train_model(dataset: str, config: str | None, on_status: Callable[[str], None] | None = None) -> TrainSummary:
    """Pretrain on a validated dataset version with Ray Train; tracked and registered in MLflow."""
    from radpipe.model.config import load_config
    from radpipe.train.run import train

    experiment = load_config(config)  # a bad config fails before any data is read
    open_dataset(dataset, gate=True)
    return train(dataset, experiment, get_settings(), on_status)


def evaluate_model(
    model_uri: str,
    dataset: str,
    seed: int = 0,
    resamples: int = 1000,
    on_status: Callable[[str], None] | None = None,
    actors: int = 0,
) -> EvaluationSummary:
    """Zero-shot, retrieval and linear-probe metrics on the test split, logged to MLflow (`actors` N > 0: the
    images are embedded by N Ray actors)."""
    from radpipe.evaluate.run import evaluate

    open_dataset(dataset, gate=True)
    settings = get_settings()
    return evaluate(model_uri, dataset, settings, resamples=resamples, seed=seed, on_status=on_status, actors=actors)


def promote_model(
    model_uri: str,
    dataset: str,
    metric: str | None = None,
    min_improvement: float = 0.0,
    on_status: Callable[[str], None] | None = None,
) -> PromotionSummary:
    """Move @champion to the model if it beats the champion on this dataset version."""
    from radpipe.evaluate.promotion import DEFAULT_METRIC, promote

    open_dataset(dataset, gate=True)
    return promote(
        model_uri,
        dataset,
        get_settings(),
        metric or DEFAULT_METRIC,
        min_improvement=min_improvement,
        on_status=on_status,
    )


def embed_images(
    model_uri: str,
    dataset: str,
    on_progress: Callable[[int, int], None] | None = None,
    actors: int | None = None,
) -> EmbeddingSummary:
    """Write embeddings/ for every image, under the dataset lock (where it runs: radpipe.model.embed_dataset)."""
    from radpipe.model.embed_dataset import embed_dataset

    store = open_dataset(dataset, gate=True)
    with dataset_lock(store, "embed"):
        return embed_dataset(model_uri, dataset, get_settings(), on_progress, actors)


def finetune_report_model(
    model_uri: str,
    dataset: str,
    shots: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
    on_status: Callable[[str], None] | None = None,
) -> ReportFinetuneSummary:
    """Adapt a generative model's report decoder to the dataset's reports; registers `radpipe-report`."""
    from radpipe.finetune.config import finetune_config

    config = finetune_config(shots=shots, seed=seed, **({"epochs": epochs} if epochs is not None else {"epochs": 30}))
    open_dataset(dataset, gate=True)
    from radpipe.finetune.report import finetune_report

    return finetune_report(model_uri, dataset, config, get_settings(), on_status)


def finetune_model(
    model_uri: str,
    dataset: str,
    label: str,
    shots: int | None = None,
    mode: str = "frozen",
    epochs: int | None = None,
    seed: int = 0,
    on_status: Callable[[str], None] | None = None,
) -> FinetuneSummary:
    """Train, measure and register a `radpipe-<finding>` classifier on a foundation model (see radpipe/finetune)."""
    from radpipe.finetune.config import finding_label, finetune_config

    # A bad setting, label or dataset fails in a second, before torch, MLflow or any model loads.
    config = finetune_config(mode=mode, shots=shots, seed=seed, **({} if epochs is None else {"epochs": epochs}))
    finding_label(label)
    open_dataset(dataset, gate=True)
    from radpipe.finetune.run import finetune

    return finetune(model_uri, dataset, label, config, get_settings(), on_status)
