"""Figures a person would rather look at than read: ROC curves per finding and a retrieval example grid."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in a worker

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from radpipe.evaluate.metrics import Estimate  # noqa: E402


def roc_figure(
    truths: Mapping[str, np.ndarray], scores: Mapping[str, np.ndarray], estimates: Mapping[str, Estimate], title: str
) -> Figure:
    """One ROC curve per scored label (known rows only), its AUROC and interval in the legend."""
    fig, ax = plt.subplots(figsize=(6.4, 6.0), dpi=110)
    for name in sorted(estimates):
        truth, score = truths[name], scores[name]
        known = ~np.isnan(truth)
        fpr, tpr, _ = roc_curve(truth[known].astype(int), score[known])
        e = estimates[name]
        ax.plot(fpr, tpr, lw=1.6, label=f"{name.replace('_', ' ')}  {e.value:.2f} [{e.low:.2f}, {e.high:.2f}]")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="chance  0.50")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.legend(loc="lower right", fontsize=8, title="AUROC [95% CI]", title_fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class RetrievalExample:
    """One query image, its own report, and the model's top reports (text, is it a right answer)."""

    uid: str  # the image's sop_instance_uid (a pseudonym)
    image: np.ndarray
    truth: str
    retrieved: Sequence[tuple[str, bool]]


def retrieval_grid(examples: Sequence[RetrievalExample], title: str, width: int = 70) -> Figure:
    """A row per query image: the image, then its top retrieved reports, green when right, red when not."""
    rows = max(len(examples), 1)
    fig, axes = plt.subplots(rows, 2, figsize=(11, 2.6 * rows), dpi=100, gridspec_kw={"width_ratios": [1, 3.4]})
    axes = np.atleast_2d(axes)
    for (image_ax, text_ax), example in zip(axes, examples, strict=False):
        image_ax.imshow(example.image, cmap="gray")
        image_ax.set_axis_off()
        text_ax.set_axis_off()
        y = 0.97
        text_ax.text(0, y, "report: " + _short(example.truth, width), va="top", fontsize=8, style="italic")
        for rank, (text, right) in enumerate(example.retrieved, start=1):
            y -= 0.3
            colour = "#1a7f37" if right else "#b3261e"
            text_ax.text(0, y, f"{rank}. {_short(text, width)}", va="top", fontsize=8, color=colour)
    for image_ax, text_ax in axes[len(examples) :]:
        image_ax.set_axis_off()
        text_ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _short(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width)[:2]) + (" ..." if len(text) > 2 * width else "")
