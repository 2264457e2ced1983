"""Every shipped experiment config loads; a wrong one fails with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from radpipe.errors import ConfigError
from radpipe.model.config import ExperimentConfig, load_config

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))


def test_the_smoke_and_a_gpu_config_ship() -> None:
    names = {p.name for p in CONFIGS}
    assert "smoke.yaml" in names
    assert any(load_config(p).scaling.use_gpu for p in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads_and_builds_its_model(path: Path) -> None:
    from radpipe.model.coca import CoCaModel, build_model

    config = load_config(path)
    assert isinstance(config, ExperimentConfig)
    model = build_model(config.model, config.model.text.vocab_size, config.model.decoder.vocab_size)
    assert model.image_encoder.cfg == config.model.image
    assert isinstance(model, CoCaModel) == (config.model.objective != "contrastive")


def test_a_generative_gpu_config_ships() -> None:
    """ViT-B/16, a 6-layer report decoder, bf16 on GPUs (issue 16)."""
    config = load_config(Path(__file__).parents[2] / "configs" / "gpu-coca-vit-224.yaml")
    model = config.model
    assert (model.objective, model.image.arch, model.image.patch_size, model.image.hidden_size) == (
        "coca",
        "vit",
        16,
        768,
    )
    assert (model.decoder.num_layers, config.train.precision, config.scaling.use_gpu) == (6, "bf16", True)


def test_defaults_without_a_file() -> None:
    assert load_config(None) == ExperimentConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train:\n  step: 10\n", "train.step: Extra inputs are not permitted"),
        ("train:\n  steps: 0\n", "train.steps"),
        ("model:\n  image:\n    arch: vit\n    input_size: 100\n    patch_size: 16\n", "not a multiple of patch_size"),
        ("train:\n  steps: 10\n  warmup_steps: 10\n", "warmup_steps must be below steps"),
        ("model:\n  image:\n    resnet_layers: [1, 1, 1]\n    resnet_widths: [8, 8, 8]\n", "need 4 entries"),
        ("registered_model: models:/x\n", "registered_model: String should match pattern"),
        ("- just\n- a list\n", "expected a mapping"),
        ("train: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path)
    assert "\n" not in str(caught.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
