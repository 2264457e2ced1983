"""A 3D network that also takes 2D input as a volume of depth 1, at a 2D network's cost (RadFM's one encoder).

A depth-1 volume through a 3D convolution whose depth padding keeps the depth at 1 meets only the kernel's
middle depth tap (the others fall on zero padding): that is a 2D convolution with the kernel's middle slice.
Batch norm over a depth of 1 is batch norm over the plane, and a pooling window padded the same way sees one
plane. So a radiograph [B, C, H, W] runs through the 3D modules as the 2D operations they reduce to, giving
exactly what the same radiograph as a [B, C, 1, H, W] volume gives, without the zero taps' two-thirds of the
work. Volumes [B, C, D, H, W] take the modules' own 3D path, unchanged. Parameter names and shapes are those of
the 3D modules, so weights load either way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _triple(value: int | tuple[int, ...]) -> tuple[int, int, int]:
    values = (value,) * 3 if isinstance(value, int) else tuple(value)
    return (values[0], values[1], values[2])


def _middle_tap(kernel: int, padding: int, stride: int, dilation: int = 1) -> int:
    """The kernel depth index a depth-1 input meets, if the output keeps depth 1; else ValueError."""
    reach = dilation * (kernel - 1)
    if not 0 <= 2 * padding - reach < stride or padding % dilation:
        raise ValueError(
            f"a depth-1 input would not stay depth 1 (kernel {kernel}, padding {padding}, stride {stride})"
        )
    return padding // dilation


class DepthOneConv3d(nn.Conv3d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 5:
            return super().forward(x)
        stride, padding, dilation = _triple(self.stride), _triple(self.padding), _triple(self.dilation)  # type: ignore[arg-type]
        tap = _middle_tap(_triple(self.kernel_size)[0], padding[0], stride[0], dilation[0])
        weight = self.weight[:, :, tap]
        return F.conv2d(x, weight, self.bias, stride[1:], padding[1:], dilation[1:], self.groups)


class DepthOneBatchNorm3d(nn.BatchNorm3d):
    def _check_input_dim(self, input: torch.Tensor) -> None:  # noqa: A002 (torch's name)
        if input.dim() not in (4, 5):
            raise ValueError(f"expected a 4-D (plane) or 5-D (volume) input, got {input.dim()}-D")


class DepthOneMaxPool3d(nn.MaxPool3d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 5:
            return super().forward(x)
        kernel, stride = _triple(self.kernel_size), _triple(self.stride or self.kernel_size)
        padding, dilation = _triple(self.padding), _triple(self.dilation)
        _middle_tap(kernel[0], padding[0], stride[0], dilation[0])
        return F.max_pool2d(x, kernel[1:], stride[1:], padding[1:], dilation[1:], self.ceil_mode)


_PLANE_FORMS: dict[type[nn.Module], type[nn.Module]] = {
    nn.Conv3d: DepthOneConv3d,
    nn.BatchNorm3d: DepthOneBatchNorm3d,
    nn.MaxPool3d: DepthOneMaxPool3d,
}


_SPATIAL = (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm, nn.modules.pooling._MaxPoolNd)


def accept_depth_one(network: nn.Module) -> nn.Module:
    """Let `network`'s 3D convolutions, batch norms and max pools also take 4-D (plane) input, in place.

    The modules keep their parameters and buffers (only their class changes to a subclass that adds the
    plane path); a module whose depth settings would not keep a depth-1 input at depth 1 raises when it meets
    a plane. Returns `network`.
    """
    for module in network.modules():
        plane_form = _PLANE_FORMS.get(type(module))
        if plane_form is not None:
            module.__class__ = plane_form
        elif isinstance(module, _SPATIAL) and type(module) not in _PLANE_FORMS.values():
            raise ValueError(f"{type(module).__name__} has no depth-1 plane form")
    return network
