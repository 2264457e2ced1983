"""One 3D encoder for radiographs and volumes (radpipe/model/depth_one.py): a radiograph through the plane path
gives exactly what the same radiograph as a depth-1 volume gives through the 3D path."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from radpipe.model.config import ImageEncoderConfig
from radpipe.model.depth_one import accept_depth_one
from radpipe.model.image import ImageEncoder
from radpipe.train.loop import radiograph_step


@pytest.mark.parametrize(("stem_stride", "side"), [(1, 4), (2, 2)])
def test_a_radiograph_is_a_volume_of_depth_one(stem_stride: int, side: int) -> None:
    torch.manual_seed(0)
    cfg = ImageEncoderConfig(spatial_dims=3, radiographs=True, input_size=64, resnet_stem_stride=stem_stride)
    encoder = ImageEncoder(cfg)
    encoder.train()  # batch statistics: the two paths see the same numbers
    radiographs = torch.rand(3, 1, 64, 64)
    as_volumes = radiographs.unsqueeze(2).expand(-1, 3, -1, -1, -1).contiguous()  # grey into every channel
    planes, volumes = encoder.tokens(radiographs), encoder.tokens(as_volumes)
    # 64 px, strides 2^4 (2^5 with a strided stem): 4 x 4 (2 x 2) positions of width 256
    assert planes.shape == volumes.shape == (3, side * side, 256)
    torch.testing.assert_close(planes, volumes, atol=1e-4, rtol=1e-4)
    last = planes.transpose(1, 2).reshape(3, 256, side, side)  # MONAI's own global pool, on a plane: the token mean
    torch.testing.assert_close(encoder.net.avgpool(last).flatten(1), planes.mean(dim=1))


def test_volumes_take_the_unchanged_3d_path_and_gradients_reach_the_middle_taps() -> None:
    torch.manual_seed(0)
    encoder = ImageEncoder(ImageEncoderConfig(spatial_dims=3, radiographs=True, input_size=64))
    plain = ImageEncoder(ImageEncoderConfig(spatial_dims=3))
    loaded = plain.load_state_dict(encoder.state_dict(), strict=False)  # the same parameter names and shapes
    assert not loaded.missing_keys and all(".plane_" in key for key in loaded.unexpected_keys)
    volume = torch.rand(2, 3, 8, 32, 32)
    torch.testing.assert_close(encoder.eval()(volume), plain.eval()(volume))
    encoder.train()(torch.rand(2, 1, 64, 64)).sum().backward()
    weight = encoder.net.conv1.weight  # [out, 3, 7, 7, 7]: a plane meets depth tap 3 only
    assert weight.grad is not None and weight.grad[:, :, 3].abs().sum() > 0
    assert weight.grad[:, :, [0, 1, 2, 4, 5, 6]].abs().sum() == 0


def test_radiographs_and_volumes_keep_their_own_batch_norm_statistics() -> None:
    torch.manual_seed(0)
    encoder = ImageEncoder(ImageEncoderConfig(spatial_dims=3, radiographs=True, input_size=64)).train()
    bn = encoder.net.bn1
    encoder.tokens(torch.rand(4, 3, 8, 32, 32) * 0.2)  # dark volumes
    volume_mean, plane_mean = bn.running_mean.clone(), bn.plane_running_mean.clone()
    assert not torch.equal(volume_mean, torch.zeros_like(volume_mean)) and torch.equal(
        plane_mean, torch.zeros_like(plane_mean)
    )
    encoder.tokens(torch.rand(4, 1, 64, 64))  # bright radiographs: only the plane statistics move
    assert torch.equal(bn.running_mean, volume_mean) and not torch.equal(bn.plane_running_mean, plane_mean)
    assert int(bn.plane_num_batches_tracked) == 1 and int(bn.num_batches_tracked) == 1
    encoder.eval()
    radiograph = torch.rand(2, 1, 64, 64)
    as_volume = radiograph.unsqueeze(2).expand(-1, 3, -1, -1, -1).contiguous()
    assert not torch.allclose(encoder.tokens(radiograph), encoder.tokens(as_volume))  # each its own statistics


def test_a_layer_that_would_grow_a_depth_one_input_is_refused() -> None:
    net = accept_depth_one(nn.Sequential(nn.Conv3d(1, 2, kernel_size=3, padding=2)))
    with pytest.raises(ValueError, match="would not stay depth 1"):
        net(torch.rand(1, 1, 8, 8))
    for layer in (nn.Conv2d(1, 2, 3), nn.AvgPool3d(2)):
        with pytest.raises(ValueError, match="has no depth-1 plane form"):
            accept_depth_one(nn.Sequential(layer))


@pytest.mark.parametrize(("fraction", "volume_steps"), [(0.75, [0, 4, 8]), (0.5, [0, 2, 4, 6, 8, 10])])
def test_radiograph_and_volume_steps_alternate_evenly(fraction: float, volume_steps: list[int]) -> None:
    assert [s for s in range(12) if not radiograph_step(s, fraction)] == volume_steps
