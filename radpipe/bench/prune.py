"""Data-efficiency benchmark: the same model trained on all training images, on a SemDeDup-pruned third,
and on a random third (the control), each evaluated on the same test split.

`radpipe bench --suite prune`. Every contender trains the same number of steps from the same config; only the
images it may learn from differ. The pruned third is chosen from the embeddings of the full-data model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.table import Table

from radpipe.bench import CHECKOUT
from radpipe.bench.train import prepared_dataset
from radpipe.dataset.commit import replace_table
from radpipe.dataset.store import DatasetStore
from radpipe.evaluate.protocol import ENCODER_HEADLINE
from radpipe.model.config import ExperimentConfig, load_config

KEEP = 1 / 3
COLUMNS = ENCODER_HEADLINE  # recorded on every model version; the first is the promotion default


def random_third(dataset: Path, seed: int) -> int:
    """The control: prune a seeded random two-thirds of the training images (curation/ rewritten)."""
    store = DatasetStore(str(dataset))
    curation = store.read_table("curation")
    studies = store.read_table("studies", ["study_instance_uid", "split"])
    train = set(studies.filter(pc.equal(studies["split"], "train"))["study_instance_uid"].to_pylist())
    rows = curation.to_pylist()
    candidates = [i for i, r in enumerate(rows) if r["study_instance_uid"] in train and not r["prune"]]
    rng = np.random.default_rng(seed)
    dropped = rng.choice(len(candidates), size=round(len(candidates) * (1 - KEEP)), replace=False)
    for index in dropped:
        rows[candidates[index]] |= {"prune": True, "prune_reason": "random (benchmark control)"}
    replace_table(store, "curation", pa.Table.from_pylist(rows, schema=curation.schema))
    return len(candidates) - len(dropped)


def run_prune_bench(out: Path, console: Console, studies: int = 1000, config: str | None = None) -> dict[str, Any]:
    """Train and evaluate the three contenders; print and save the table."""
    from radpipe.commands import curate_dataset, validate
    from radpipe.curate.semantic import SemanticRule
    from radpipe.evaluate.run import evaluate
    from radpipe.model.embed_dataset import embed_dataset
    from radpipe.settings import get_settings
    from radpipe.train.run import train

    out = out.resolve()
    full = prepared_dataset(out, studies, console)
    exp: ExperimentConfig = load_config(config or str(CHECKOUT / "configs" / "demo.yaml"))
    exp = exp.model_copy(update={"registered_model": "radpipe-bench-prune", "name": "radpipe-bench-prune"})
    # The benchmark's runs and models stay out of the user's store.
    settings = get_settings().model_copy(update={"mlflow_tracking_uri": f"sqlite:///{out / 'bench-mlflow.db'}"})
    results: dict[str, dict[str, Any]] = {}

    def contender(label: str, dataset: Path) -> str:
        console.print(f"{label}: training {exp.train.steps} steps ...")
        if not validate(str(dataset)).passed:
            raise RuntimeError(f"the {label} dataset failed validation")
        trained = train(str(dataset), exp, settings)
        metrics = evaluate(trained.model_uri, str(dataset), settings).metrics
        results[label] = {"train_images": trained.images["train"], "model": trained.model_uri, **metrics}
        console.print(f"{label}: {trained.images['train']} images, zeroshot_auroc_macro {metrics[COLUMNS[0]]:.3f}")
        return trained.model_uri

    full_model = contender("full", full)
    pruned = out / "prune-semdedup" / "dataset"
    shutil.rmtree(pruned.parent, ignore_errors=True)
    shutil.copytree(full, pruned)
    embed_dataset(full_model, str(pruned), settings)
    curate_dataset(str(pruned), semantic=SemanticRule(keep_fraction=KEEP))
    contender("semdedup third", pruned)
    control = out / "prune-random" / "dataset"
    shutil.rmtree(control.parent, ignore_errors=True)
    shutil.copytree(full, control)
    random_third(control, seed=exp.train.seed)
    contender("random third", control)

    table = Table(title=f"data efficiency: {exp.train.steps} steps each, same test split ({studies} studies)")
    for column in ("training data", "images", "zero-shot macro [95% CI]", "probe macro", "i->t R@5", "t->i R@5"):
        table.add_column(column, justify="left" if column == "training data" else "right", no_wrap=True)
    for label, r in results.items():
        cells = [f"{r[c]:.3f}" for c in COLUMNS]
        cells[0] = f"{r[COLUMNS[0]]:.3f} [{r[COLUMNS[0] + '_ci_low']:.2f}, {r[COLUMNS[0] + '_ci_high']:.2f}]"
        table.add_row(label, str(r["train_images"]), *cells)
    console.print(table, width=120)  # whole columns in a log or a pipe too
    ratio = results["semdedup third"][COLUMNS[0]] / results["full"][COLUMNS[0]]
    console.print(f"semdedup third / full, zero-shot macro AUROC: {ratio:.3f}")
    (out / "prune-results.json").write_text(json.dumps(results, indent=2))
    return results
