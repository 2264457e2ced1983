"""An evaluation as an MLflow run: metrics, ROC curves, a retrieval grid, the same numbers as tables.

The headline metrics are also tagged on the model version, keyed by dataset version
(`eval.<dataset_version>.<metric>`), which is what promotion compares.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt

from radpipe import tracking
from radpipe.evaluate.plots import retrieval_grid, roc_figure
from radpipe.evaluate.protocol import HEADLINE, Evaluation, protocol_digest, version_tag


def metrics_table(result: Evaluation) -> str:
    """Per-finding AUROCs with intervals (zero-shot and probe), then the retrieval figures, as Markdown."""
    lines = ["| finding | zero-shot AUROC [95% CI] | linear probe AUROC [95% CI] |", "|---|---|---|"]
    for name in sorted(set(result.zeroshot) | set(result.probe)):
        cells = [_cell(result.zeroshot.get(name)), _cell(result.probe.get(name))]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    m = result.metrics
    lines.append(
        f"| **macro** | {m['zeroshot_auroc_macro']:.3f} [{m['zeroshot_auroc_macro_ci_low']:.3f}, "
        f"{m['zeroshot_auroc_macro_ci_high']:.3f}] | {m.get('probe_auroc_macro', float('nan')):.3f} |"
    )
    lines += ["", "| retrieval | recall@1 | recall@5 | recall@10 | median rank |", "|---|---|---|---|---|"]
    for direction in ("image_to_text", "text_to_image"):
        p = f"retrieval_{direction}"
        lines.append(
            f"| {direction.replace('_', ' ')} | {m[p + '_recall_at_1']:.3f} | {m[p + '_recall_at_5']:.3f} | "
            f"{m[p + '_recall_at_10']:.3f} | {m[p + '_median_rank']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _texts(result: Evaluation) -> dict[str, str]:
    texts = {"tables/metrics.md": metrics_table(result), "tables/metrics.csv": metrics_csv(result.metrics)}
    if result.generation is not None:
        from radpipe.evaluate.generation import markdown_rows

        texts["tables/generated_reports.md"] = markdown_rows(result.generation)
    return texts


def _cell(e: Any) -> str:
    return "-" if e is None else f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]"


def metrics_csv(metrics: Mapping[str, float]) -> str:
    return "metric,value\n" + "".join(f"{k},{v:.6g}\n" for k, v in sorted(metrics.items()))


def log_evaluation(
    ref: tracking.ModelRef,
    dataset: str,
    dataset_version: str,
    profile: str,
    result: Evaluation,
    params: Mapping[str, Any],
) -> str:
    """Log one evaluation run beside the model's training run; returns its run id."""
    experiment = tracking.experiment_of_run(ref.run_id) if ref.run_id else "radpipe-evaluation"
    tags = {
        "radpipe.kind": "evaluation",
        "model_uri": ref.pinned,
        "model_name": ref.name or "",
        "model_version": ref.version or "",
        "dataset_version": dataset_version,
        "profile": profile,
    }
    protocol = protocol_digest(int(params.get("seed", 0)))
    # The retrieval grid shows these test images: the tag lets an erasure find the runs that hold them.
    tags |= {"protocol": protocol, "examples": ",".join(example.uid for example in result.examples)}
    run_params = {"dataset_uri": dataset, **{k: str(v) for k, v in params.items()}}
    run_id = tracking.start_run(experiment, f"evaluate-{ref.name}-v{ref.version}", run_params, tags)
    title = f"{ref.pinned} on dataset {dataset_version}"
    figures = {
        "plots/zeroshot_roc.png": roc_figure(result.truths, result.scores, result.zeroshot, f"zero-shot: {title}"),
        "plots/retrieval_examples.png": retrieval_grid(result.examples, f"image -> report retrieval: {title}"),
    }
    try:
        tracking.log_dataset_input(run_id, dataset, dataset_version, profile, result.images, context="evaluation")
        tracking.log_results(
            run_id,
            result.metrics,
            model_id=ref.model_id,
            figures=figures,
            texts=_texts(result),
        )
    except BaseException:
        tracking.fail_run(run_id)
        raise
    finally:
        for figure in figures.values():
            plt.close(figure)
    if ref.name and ref.version:
        headline = {
            version_tag(dataset_version, k): f"{result.metrics[k]:.6f}" for k in HEADLINE if k in result.metrics
        }
        headline |= {
            version_tag(dataset_version, "run_id"): run_id,
            version_tag(dataset_version, "protocol"): protocol,
        }
        tracking.set_version_tags(ref.name, ref.version, headline)
    return run_id
