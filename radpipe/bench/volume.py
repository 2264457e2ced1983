"""Memory of one 3D training step: `radpipe bench --suite volume-memory`.

Each case runs in a fresh process (peak RSS is per process): one forward and backward pass of the
configured 3D model over a batch at a volume profile's size, with and without gradient checkpointing.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from radpipe.bench import CHECKOUT

CASES = (("ct-small", 4), ("ct-merlin", 2))


def one_step(config: str, profile: str, batch: int, checkpointing: bool) -> dict[str, float]:
    """Run one training step in this process; peak RSS growth over the built model, in MiB."""
    import torch

    from radpipe.model.clip import ContrastiveModel, contrastive_loss
    from radpipe.model.config import load_config
    from radpipe.preprocess.volume import get_volume_profile

    exp = load_config(config)
    vocab = exp.model.text.vocab_size
    model = ContrastiveModel(exp.model, vocab, gradient_checkpointing=checkpointing).train()
    images = torch.rand((batch, exp.model.image.channels, *get_volume_profile(profile).size))
    ids = torch.randint(0, vocab, (batch, exp.model.text.max_length))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    image_emb, text_emb, scale = model(images, ids, torch.ones_like(ids))
    contrastive_loss(image_emb, text_emb, scale).backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "input_mib": images.numel() * 4 / 2**20,
        "peak_mib": (peak - base) / 1024,
        "seconds": time.perf_counter() - started,
    }


def run_volume_memory_bench(out: Path, console: Console, config: str | None = None) -> list[dict[str, object]]:
    config = config or str(CHECKOUT / "configs" / "smoke-3d.yaml")
    rows: list[dict[str, object]] = []
    for profile, batch in CASES:
        for checkpointing in (False, True):
            code = (
                "import json,sys; from radpipe.bench.volume import one_step; "
                f"print(json.dumps(one_step({config!r}, {profile!r}, {batch}, {checkpointing})))"
            )
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            rows.append(
                {
                    "profile": profile,
                    "batch": batch,
                    "checkpointing": checkpointing,
                    **json.loads(done.stdout.strip().splitlines()[-1]),
                }
            )
    table = Table(title=f"one 3D training step, {Path(config).name}, CPU")
    for column in ("profile", "batch", "checkpointing", "input MiB", "peak RSS MiB", "step s"):
        table.add_column(column, justify="left" if column == "profile" else "right", no_wrap=True)
    for r in rows:
        table.add_row(
            str(r["profile"]),
            str(r["batch"]),
            str(r["checkpointing"]),
            f"{r['input_mib']:.0f}",
            f"{r['peak_mib']:.0f}",
            f"{r['seconds']:.1f}",
        )
    console.print(table, width=120)
    out.mkdir(parents=True, exist_ok=True)
    (out / "volume-memory.json").write_text(json.dumps(rows, indent=2))
    return rows
