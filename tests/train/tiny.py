"""A seconds-long experiment config for tests: small images, small encoders, few steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from radpipe.model.config import ExperimentConfig


def tiny_config(**train: Any) -> dict[str, Any]:
    return {
        "name": "radpipe-tests",
        "registered_model": "radpipe-foundation",
        "model": {
            "embed_dim": 32,
            "image": {"input_size": 64, "resnet_widths": [8, 16, 32, 64]},
            "text": {"vocab_size": 400, "max_length": 32, "width": 32, "num_layers": 1, "num_heads": 2},
        },
        "train": {
            "steps": 12,
            "batch_size": 8,
            "lr": 0.002,
            "warmup_steps": 2,
            "precision": "fp32",
            "checkpoint_every": 6,
            "log_every": 2,
            "val_every": 6,
            "val_batches": 1,
            **train,
        },
        "scaling": {"num_workers": 1, "max_failures": 1},
    }


def tiny_coca_config(objective: str = "coca", rationale: str = "include", **train: Any) -> dict[str, Any]:
    """The tiny config with a small report decoder (CoCa by default)."""
    config = tiny_config(**train)
    config["model"] |= {
        "objective": objective,
        "decoder": {"vocab_size": 400, "max_length": 48, "width": 32, "num_layers": 1, "num_heads": 2},
    }
    config["train"]["text"] = {"rationale": rationale}
    return config


def tiny_experiment(**train: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate(tiny_config(**train))


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def quick_experiment(config: Path, steps: int, registered_model: str, **train: Any) -> ExperimentConfig:
    """A config file's experiment cut to `steps` (checkpointed and validated at the last), under its own name."""
    from radpipe.model.config import load_config

    exp = load_config(str(config))
    update = {"steps": steps, "checkpoint_every": steps, "val_every": steps, **train}
    return exp.model_copy(update={"train": exp.train.model_copy(update=update), "registered_model": registered_model})


def validated_archive(root: Path, studies: int, volumes: int, seed: int) -> tuple[Path, Path]:
    """A synthetic archive under `root` ingested (cxr-224, ct-small/mr-small), curated and validated:
    (archive folder, dataset folder)."""
    from radpipe.commands import curate_dataset, ingest_sources, validate
    from radpipe.synth import write_archive

    write_archive(root / "archive", studies=studies, volumes=volumes, seed=seed)
    dataset = root / "dataset"
    ingest_sources(str(root / "archive" / "dicom"), str(root / "archive" / "reports"), str(dataset), "cxr-224")
    curate_dataset(str(dataset))
    assert validate(str(dataset)).passed
    return root / "archive", dataset
