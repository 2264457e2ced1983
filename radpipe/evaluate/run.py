"""`radpipe evaluate`: a registered model on a validated dataset version's test split, logged to MLflow.

Zero-shot classification from prompt pairs, image<->report retrieval, and linear probes; every number is
reproducible for a seed (deterministic embedding, seeded bootstrap and probe sampling).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from radpipe.dataset.profiles import dataset_profile
from radpipe.dataset.store import DatasetStore
from radpipe.deid.identifiers import IdentifierIndex
from radpipe.errors import ConfigError, SourceError
from radpipe.evaluate.data import (
    LabelledSplit,
    embed_splits,
    iter_pixels,
    iter_volumes,
    labelled_split,
    model_inputs_of,
    reference_sections_of,
)
from radpipe.evaluate.generation import GenerationResult, generation_metrics
from radpipe.evaluate.metrics import Estimate, macro_bootstrap
from radpipe.evaluate.modality import modality_metrics
from radpipe.evaluate.probe import probe_aurocs
from radpipe.evaluate.prompts import PROMPTS
from radpipe.evaluate.protocol import HEADLINE, PROBE_IMAGES, Evaluation
from radpipe.evaluate.retrieval import retrieval_metrics, text_groups
from radpipe.evaluate.zeroshot import prompt_scores, zeroshot_aurocs
from radpipe.model.embed_dataset import EmbeddingParts, embedding_pool
from radpipe.model.embedder import Embedder
from radpipe.model.exam import exam_line
from radpipe.model.registered import load_registered_embedder
from radpipe.ops.facts import RunFacts, metric_values, summary_record
from radpipe.quality.status import require_validated
from radpipe.settings import Settings

EXAMPLES = 4  # rows of the retrieval grid
SHOWN_IN_SUMMARY = 2  # written reports a summary (and `make demo`'s last lines) shows beside their references


@dataclass
class EvaluationSummary:
    model_uri: str  # pinned: models:/<name>/<version>
    dataset_version: str
    run_id: str
    metrics: dict[str, float] = field(default_factory=dict)
    images: dict[str, int] = field(default_factory=dict)
    # A model that writes reports: the first test studies' (reference, written) pair, scrubbed text only.
    written_reports: list[tuple[str, str]] = field(default_factory=list)

    def facts(self) -> RunFacts:
        return RunFacts(
            dataset_version=self.dataset_version,
            metrics=metric_values(self.metrics, HEADLINE),  # the rest stay in MLflow
            model_versions=(self.model_uri,),
        )

    def record(self) -> dict[str, Any]:
        return summary_record(self, self.facts())

    def markdown(self) -> str:
        """The evaluation as a Markdown artifact: headline metrics, then every finding's zero-shot AUROC."""
        m = self.metrics
        findings = sorted(
            k for k in m if k.startswith("zeroshot_auroc_") and not k.endswith(("_ci_low", "_ci_high", "_macro"))
        )
        rows = "\n".join(f"| {k} | {m[k]:.3f} | [{m[k + '_ci_low']:.3f}, {m[k + '_ci_high']:.3f}] |" for k in findings)
        headline = "\n".join(f"| {k} | {m[k]:.3f} |" for k in HEADLINE if k in m)
        return (
            f"# Evaluation of `{self.model_uri}` on dataset {self.dataset_version}\n\n"
            f"MLflow run `{self.run_id}`; {self.images.get('test', 0)} test images.\n\n"
            f"| metric | value |\n|---|---|\n{headline}\n\n"
            f"| zero-shot AUROC | value | 95% CI |\n|---|---|---|\n{rows}\n"
        )


def _estimate_metrics(prefix: str, estimates: dict[str, Estimate]) -> dict[str, float]:
    out = {}
    for name, e in estimates.items():
        out[f"{prefix}_{name}"] = e.value
        out[f"{prefix}_{name}_ci_low"] = e.low
        out[f"{prefix}_{name}_ci_high"] = e.high
    return out


def compute(
    store: DatasetStore,
    embedder: Embedder,
    resamples: int = 1000,
    seed: int = 0,
    probe_images: int = PROBE_IMAGES,
    status: Callable[[str], None] = lambda _m: None,
    identifiers: IdentifierIndex | None = None,
    volumes: bool | None = None,
    partial: bool = False,
    pool: EmbeddingParts | None = None,
) -> Evaluation:
    """Embed the test split (and a seeded sample of train for the probes) and compute every metric; a model
    with a report decoder also writes a report per test study (scrubbed, and cleared of every identifier
    form in `identifiers`, the dataset's index) and is scored on them.

    `volumes`: evaluate on the CT/MR volumes (default: what the model takes; a model of both says which).
    `partial`: a test split where no finding has both classes still gives the other metrics (a model of both
    modalities may have few test series).
    `pool`: embed the images (not series) through these Ray actors (radpipe.model.embed_dataset.embedding_pool)."""
    volumes = embedder.volumetric and not embedder.radiographs if volumes is None else volumes
    mixed = embedder.spec.model.mixed
    test = labelled_split(store, "test", volumes=volumes, exams=mixed)
    if len(test) < 2:
        raise SourceError(f"the test split has {len(test)} image(s) with a report; evaluation needs more")
    train = labelled_split(store, "train", volumes=volumes)
    if len(train) > probe_images:
        train = train.subset(np.sort(np.random.default_rng(seed).choice(len(train), probe_images, replace=False)))
    noun, where = ("series", "") if volumes else ("images", "" if pool is None else " on Ray actors")
    status(f"embedding {len(test)} test and {len(train)} train {noun} (for the linear probes){where}")
    test_emb, train_emb = embed_splits(store, (test, train), embedder, pool)

    prompt_emb = finding_prompts(embedder, test if mixed else None)
    studies = np.asarray(test.studies, dtype=object)  # intervals resample studies: their views share a report
    zeroshot = zeroshot_aurocs(test_emb, test.labels, prompt_emb, resamples=resamples, seed=seed, groups=studies)
    if not zeroshot and not partial:
        raise SourceError("no finding with prompts has both present and absent cases in the test split")
    scores = {name: prompt_scores(test_emb, *prompt_emb[name]) for name in zeroshot}
    truths = {name: test.labels[name] for name in zeroshot}
    metrics = _estimate_metrics("zeroshot_auroc", zeroshot)
    if zeroshot:
        macro = macro_bootstrap(truths, scores, resamples=resamples, seed=seed, groups=studies)
        metrics |= _estimate_metrics("zeroshot_auroc", {"macro": macro})

    rows = test.first_row_per_study()
    pairs = test.subset(rows)
    # A model of radiographs and volumes read each report after its examination line.
    text_emb = embedder.embed_texts(pairs.exam_texts() if mixed else pairs.texts)
    groups = text_groups(pairs.texts)
    metrics |= retrieval_metrics(test_emb[rows], text_emb, groups)
    examples = _examples(store, embedder, pairs, test_emb[rows], text_emb, groups)
    generation = None
    if embedder.writer is not None:
        status(f"writing reports for {len(pairs)} test studies")
        generation = _generation(store, embedder, pairs, resamples, seed, identifiers)
        metrics |= generation.metrics

    probe = probe_aurocs(
        train_emb,
        train.labels,
        test_emb,
        test.labels,
        resamples=resamples,
        seed=seed,
        test_groups=studies,
    )
    metrics |= _estimate_metrics("probe_auroc", probe)
    if probe:
        metrics["probe_auroc_macro"] = float(np.mean([e.value for e in probe.values()]))
    images = {"test": len(test), "test_pairs": len(pairs), "probe_train": len(train)}
    return Evaluation(metrics, zeroshot, probe, truths, scores, examples, images, generation, test, test_emb)


def finding_prompts(embedder: Embedder, exams: LabelledSplit | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each finding's (positive, negative) prompt embedding; with `exams` (a model of radiographs and volumes,
    which read every report after its examination line) one pair per row, read after the row's own line
    ("MR of the head. No intracranial haemorrhage." for an MR series beside CT ones)."""
    lines = [""] if exams is None else [exam_line(k, b) for k, b in zip(exams.kinds, exams.body_parts, strict=True)]
    distinct = list(dict.fromkeys(lines))
    row_line = np.array([distinct.index(line) for line in lines])
    prompts = {}
    for name, (positive, negative) in PROMPTS.items():
        emb = embedder.embed_texts([f"{line} {text}".strip() for line in distinct for text in (positive, negative)])
        if exams is None:
            prompts[name] = (emb[0], emb[1])
        else:
            prompts[name] = (emb[0::2][row_line], emb[1::2][row_line])
    return prompts


MODALITY_CONTEXTS = 64


def report_contexts(store: DatasetStore, seed: int) -> list[str]:
    """Report texts of the validation split (radiographs' and series', distinct, a seeded sample; the train
    split's when the validation split has none): what follows the examination line in a modality prompt.

    The model only ever read an examination line before a report; a bare "CT of the chest." or one followed by
    a short finding sentence sat where no training text was (radiographs were taken for CT or MR about half
    the time), while the same reports under each candidate line differ in the examination words alone.
    Validation reports, not train ones: no context is a text the model was trained on under its own line.
    Never a test study's report."""
    for split in ("validation", "train"):
        texts = sorted(set(labelled_split(store, split).texts) | set(labelled_split(store, split, volumes=True).texts))
        if texts:
            break
    count = min(MODALITY_CONTEXTS, len(texts))
    return [texts[i] for i in np.sort(np.random.default_rng(seed).choice(len(texts), count, replace=False))]


def compute_mixed(
    store: DatasetStore,
    embedder: Embedder,
    resamples: int = 1000,
    seed: int = 0,
    status: Callable[[str], None] = lambda _m: None,
    identifiers: IdentifierIndex | None = None,
    pool: EmbeddingParts | None = None,
) -> Evaluation:
    """A model of radiographs and volumes: every metric on the radiographs (today's names, plots and tables),
    the same on the CT/MR series (prefixed `volume_`), and zero-shot modality recognition over both."""
    status("radiographs:")
    radiographs = compute(
        store, embedder, resamples, seed, status=status, identifiers=identifiers, volumes=False, pool=pool
    )
    status("CT/MR volumes:")
    volumes = compute(
        store, embedder, resamples, seed, status=status, identifiers=identifiers, volumes=True, partial=True
    )
    both = [radiographs.test, volumes.test]
    assert radiographs.test_embeddings is not None and volumes.test_embeddings is not None
    embeddings = np.concatenate([radiographs.test_embeddings, volumes.test_embeddings])
    kinds = [kind for rows in both for kind in rows.kinds]
    parts = [part for rows in both for part in rows.body_parts]
    studies = [study for rows in both for study in rows.studies]
    contexts = report_contexts(store, seed)
    modality = modality_metrics(embeddings, kinds, parts, embedder.embed_texts, studies, resamples, seed, contexts)
    # A control: the bare examination lines, no report after them (what the prompts would be without contexts).
    bare = modality_metrics(embeddings, kinds, parts, embedder.embed_texts, studies, 0, seed)
    modality["modality_accuracy_bare_prompts"] = bare["modality_accuracy"]
    radiographs.metrics |= {f"volume_{k}": v for k, v in volumes.metrics.items()} | modality
    radiographs.images |= {f"volume_{k}": v for k, v in volumes.images.items()}
    return radiographs


def _generation(
    store: DatasetStore,
    embedder: Embedder,
    pairs: LabelledSplit,
    resamples: int,
    seed: int,
    identifiers: IdentifierIndex | None,
) -> GenerationResult:
    """One written report per test study (greedy, so reproducible), scored against the study's report."""
    assert embedder.writer is not None
    writer = embedder.writer
    position = {uid: i for i, uid in enumerate(pairs.uids)}
    written: list[Any] = [None] * len(pairs)
    chunk: list[tuple[str, np.ndarray]] = []

    def flush() -> None:
        for (uid, _), sections in zip(chunk, writer.write([x for _, x in chunk], identifiers=identifiers), strict=True):
            written[position[uid]] = sections
        chunk.clear()

    for uid, model_input in model_inputs_of(store, pairs.uids, embedder, pairs.volumes):
        chunk.append((uid, model_input))
        if len(chunk) >= 64:
            flush()
    flush()
    references = reference_sections_of(store, pairs.studies)
    normalised = [writer.tokenizer.normalise(text) for text in pairs.texts]
    return generation_metrics(pairs.texts, written, normalised, references, pairs.studies, resamples, seed)


def _examples(
    store: DatasetStore,
    embedder: Embedder,
    pairs: LabelledSplit,
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    groups: np.ndarray,
) -> list[Any]:
    from radpipe.evaluate.plots import RetrievalExample

    chosen = pairs.uids[:EXAMPLES]  # the first by uid: the same examples for every model on this dataset
    if pairs.volumes:  # a volume is shown by its middle axial slice (as stored, in HU)
        pixels = {uid: volume[len(volume) // 2] for uid, volume, _ in iter_volumes(store, chosen)}
    else:
        pixels = dict(iter_pixels(store, chosen))
    similarity = image_emb[: len(chosen)] @ text_emb.T
    examples = []
    for i, uid in enumerate(chosen):
        top = np.argsort(-similarity[i], kind="stable")[:3]
        retrieved = [(pairs.texts[j], bool(groups[i] == groups[j])) for j in top]
        examples.append(RetrievalExample(uid, pixels[uid], pairs.texts[i], retrieved))
    return examples


def model_profile(store: DatasetStore, embedder: Embedder) -> str:
    """The dataset's profile(s) in the form of the model's spec: the image profile, the volume profiles, or for
    a model of both "<image profile>+<volume profiles>"."""
    if embedder.spec.model.mixed:
        return f"{dataset_profile(store)}+{dataset_profile(store, volumes=True)}"
    return dataset_profile(store, volumes=embedder.volumetric)


def _identifier_index(store: DatasetStore, settings: Settings) -> IdentifierIndex | None:
    """The dataset's source identifier forms (keyed), to clear written reports of them; None when this
    operator holds none for the dataset (another home or key): the scrubber's rules still apply."""
    from radpipe.dataset.guard import dataset_id, key_fingerprint, read_meta
    from radpipe.deid.identifier_store import IdentifierStore
    from radpipe.deid.keys import KEY_FILE_NAME, load_key

    identity = dataset_id(store)
    if identity is None or not (settings.radpipe_deid_key or (settings.home / KEY_FILE_NAME).exists()):
        return None  # an evaluator without the key: never create one here
    key = load_key(settings.radpipe_deid_key, settings.home)
    if read_meta(store).get("key_fingerprint") != key_fingerprint(key):
        return None
    stored = IdentifierStore(settings.home, identity).load()
    return IdentifierIndex(key, stored) if stored else None


def evaluate(
    model_uri: str,
    dataset: str,
    settings: Settings,
    resamples: int = 1000,
    seed: int = 0,
    on_status: Callable[[str], None] | None = None,
    actors: int = 0,
) -> EvaluationSummary:
    """Evaluate, log a run with metrics, plots and tables, and record the headline on the model version.

    `actors` N > 0: the radiographs are embedded by a pool of N Ray actors (radpipe.model.embed_dataset.
    embedding_pool: on RAY_ADDRESS's cluster, else a local instance); 0: in this process, also with RAY_ADDRESS
    set (promotion, the flows and the benches evaluate in process). Series and reports: in this process."""
    from radpipe import tracking
    from radpipe.evaluate.record import log_evaluation

    status = on_status or (lambda _message: None)
    store = DatasetStore(dataset)
    version = require_validated(store)  # numbers on an unvalidated version would compare nothing
    tracking.configure(settings)
    ref = tracking.resolve_model(model_uri)
    embedder = load_registered_embedder(ref.pinned)
    profile = model_profile(store, embedder)
    if embedder.spec.profile != profile:
        raise ConfigError(
            f"{ref.pinned} was trained on profile {embedder.spec.profile}, the dataset holds {profile}: "
            "evaluate on data ingested with the model's profile"
        )
    status(f"evaluating {ref.pinned} on dataset {version}")
    identifiers = _identifier_index(store, settings) if embedder.writer is not None else None
    evaluation = compute_mixed if embedder.spec.model.mixed else compute
    with embedding_pool(store, ref.pinned, settings, actors if embedder.radiographs else 0) as pool:
        result = evaluation(
            store, embedder, resamples=resamples, seed=seed, status=status, identifiers=identifiers, pool=pool
        )
    run_id = log_evaluation(ref, dataset, version, profile, result, {"resamples": resamples, "seed": seed})
    status(f"MLflow run {run_id}")
    written = result.generation.rows[:SHOWN_IN_SUMMARY] if result.generation is not None else []
    return EvaluationSummary(ref.pinned, version, run_id, result.metrics, result.images, written)
