"""radpipe's ResNet and ViT are MONAI's, module for module: the same parameter names, the same initial weights from
the same seed, the same outputs from the same weights. Models registered with MONAI's classes load unchanged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from radpipe.model import networks
from radpipe.model.config import ImageEncoderConfig
from radpipe.model.image import ImageEncoder


@pytest.fixture(scope="module")
def monai_nets() -> Any:
    """MONAI's networks, the reference."""
    return pytest.importorskip("monai.networks.nets")


RESNETS = [  # (layers, widths, spatial_dims, input channels, input shape, stem stride)
    ((1, 1, 1, 1), (8, 16, 32, 64), 2, 1, (3, 1, 48, 48), 1),
    ((2, 1, 2, 1), (8, 8, 16, 32), 2, 1, (2, 1, 40, 56), 1),  # two blocks in a stage; a non-square input
    ((1, 1, 1, 1), (4, 8, 16, 32), 3, 3, (2, 3, 16, 24, 24), 1),
    ((1, 1, 1, 1), (8, 16, 32, 64), 2, 1, (3, 1, 96, 80), 2),  # torchvision's ImageNet stem
    ((1, 1, 1, 1), (4, 8, 16, 32), 3, 3, (2, 3, 32, 48, 48), 2),
]
VITS = [  # (input size, patch, width, layers, heads, spatial_dims, channels)
    (32, 8, 32, 2, 2, 2, 1),
    (16, 8, 48, 1, 4, 3, 3),
]


def _pair(make_ours: Callable[[], nn.Module], make_monai: Callable[[], nn.Module]) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(11)
    ours = make_ours()
    torch.manual_seed(11)
    theirs = make_monai()
    return ours, theirs


def _assert_same_state(ours: nn.Module, theirs: nn.Module) -> None:
    mine, other = ours.state_dict(), theirs.state_dict()
    assert list(mine) == list(other)
    for key in mine:
        assert torch.equal(mine[key], other[key]), key


def _perturb(module: nn.Module) -> None:
    """Weights unlike any initial ones (a trained model's), batch-norm statistics included."""
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                tensor.add_(0.1 * torch.randn(tensor.shape, generator=generator))
                if name.endswith("running_var"):
                    tensor.abs_()


@pytest.mark.parametrize(("layers", "widths", "dims", "channels", "shape", "stem_stride"), RESNETS)
def test_the_resnet_is_monais(
    monai_nets: Any, layers: tuple, widths: tuple, dims: int, channels: int, shape: tuple, stem_stride: int
) -> None:
    ours, theirs = _pair(
        lambda: networks.ResNet(list(layers), list(widths), dims, channels, stem_stride=stem_stride),
        lambda: monai_nets.resnet.ResNet(
            block="basic",
            layers=list(layers),
            block_inplanes=list(widths),
            spatial_dims=dims,
            n_input_channels=channels,
            conv1_t_stride=stem_stride,
            feed_forward=False,
        ),
    )
    _assert_same_state(ours, theirs)
    _perturb(theirs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.rand(shape)
    for train in (True, False):
        ours.train(train)
        theirs.train(train)
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
    _assert_same_state(ours, theirs)  # training-mode passes updated the same running statistics


@pytest.mark.parametrize(("size", "patch", "width", "layers", "heads", "dims", "channels"), VITS)
def test_the_vit_is_monais(
    monai_nets: Any, size: int, patch: int, width: int, layers: int, heads: int, dims: int, channels: int
) -> None:
    kwargs = {
        "in_channels": channels,
        "img_size": size,
        "patch_size": patch,
        "hidden_size": width,
        "mlp_dim": width * 4,
        "num_layers": layers,
        "num_heads": heads,
        "spatial_dims": dims,
    }
    ours, theirs = _pair(lambda: networks.ViT(**kwargs), lambda: monai_nets.ViT(**kwargs, classification=False))
    _assert_same_state(ours, theirs)
    _perturb(theirs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.rand((2, channels) + (size,) * dims)
    torch.testing.assert_close(ours(x), theirs(x)[0], rtol=1e-5, atol=1e-5)


def test_an_encoder_saved_with_monais_networks_loads_and_embeds_the_same(monai_nets: Any) -> None:
    """An ImageEncoder's weights as a model registered before (MONAI's classes under `net`) load into today's."""
    cfg = ImageEncoderConfig(input_size=32, resnet_widths=(8, 16, 32, 64), spatial_dims=3, radiographs=True)
    torch.manual_seed(3)
    encoder = ImageEncoder(cfg)
    from radpipe.model.depth_one import accept_depth_one

    old = monai_nets.resnet.ResNet(
        block="basic",
        layers=[1, 1, 1, 1],
        block_inplanes=[8, 16, 32, 64],
        spatial_dims=3,
        n_input_channels=3,
        feed_forward=False,
    )
    accept_depth_one(old)
    _perturb(old)
    encoder.net.load_state_dict(old.state_dict(), strict=True)
    encoder.eval()
    old.eval()

    def old_features(x: torch.Tensor) -> torch.Tensor:
        x = old.maxpool(old.act(old.bn1(old.conv1((x - 0.5) / 0.25))))
        return old.layer4(old.layer3(old.layer2(old.layer1(x)))).flatten(2).mean(dim=2)

    for images in (torch.rand(2, 3, 8, 32, 32), torch.rand(2, 1, 32, 32)):  # volumes, and radiographs as depth 1
        torch.testing.assert_close(encoder(images), old_features(images), rtol=1e-5, atol=1e-5)


def test_loading_radpipe_models_imports_no_monai() -> None:
    import subprocess
    import sys

    modules = "radpipe.model.coca, radpipe.model.embedder, radpipe.model.pyfunc, radpipe.train.loop, radpipe.cli"
    probe = f"import sys, {modules}; print('monai' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "False"


def test_training_steps_move_both_resnets_to_the_same_weights(monai_nets: Any) -> None:
    """The demo's encoder (a 3D ResNet taking radiographs as depth 1): the same seed, data and optimiser steps
    give bit-identical weights, so a run trains as it did on MONAI's class."""
    from radpipe.model.depth_one import accept_depth_one

    ours, theirs = _pair(
        lambda: accept_depth_one(networks.ResNet([1, 1, 1, 1], [4, 8, 16, 32], 3, 3)),
        lambda: accept_depth_one(
            monai_nets.resnet.ResNet(
                block="basic", layers=[1] * 4, block_inplanes=[4, 8, 16, 32], n_input_channels=3, feed_forward=False
            )
        ),
    )
    generator = torch.Generator().manual_seed(2)
    batches = [torch.rand(4, 1, 32, 32, generator=generator) for _ in range(3)]
    batches.append(torch.rand(2, 3, 8, 32, 32, generator=generator))
    for net in (ours, theirs):
        optimizer = torch.optim.AdamW(net.parameters(), lr=0.01)
        for batch in batches:
            optimizer.zero_grad()
            net(batch).square().mean().backward()
            optimizer.step()
    _assert_same_state(ours, theirs)


@pytest.mark.parametrize("arch", ["resnet", "vit"])
def test_every_trainable_parameter_gets_a_gradient(arch: str) -> None:
    """What DDP without `find_unused_parameters` needs (loop.py): MONAI's ViT block carries a norm it never uses,
    frozen here, so a ViT trained on two workers does not stop at its second step."""
    cfg = ImageEncoderConfig(arch=arch, input_size=32, patch_size=8, hidden_size=32, num_layers=2, num_heads=2)
    encoder = ImageEncoder(cfg)
    encoder(torch.rand(2, 1, 32, 32)).square().mean().backward()
    missing = [name for name, p in encoder.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    frozen = [name for name, p in encoder.named_parameters() if not p.requires_grad]
    assert all(".norm_cross_attn." in name for name in frozen) and (arch == "resnet") == (not frozen)
