"""A 3D network that also takes 2D input as a volume of depth 1, at a 2D network's cost (RadFM's one encoder).

A depth-1 volume through a 3D convolution whose depth padding keeps the depth at 1 meets only the kernel's
middle depth tap (the others fall on zero padding): that is a 2D convolution with the kernel's middle slice.
Batch norm over a depth of 1 is batch norm over the plane, a pooling window padded the same way sees one
plane, and a global average over a depth of 1 is one over the plane. So a radiograph [B, C, H, W] runs
through the 3D modules as the 2D operations they reduce to, giving exactly what the same radiograph as a
[B, C, 1, H, W] volume gives (in training mode; in eval mode batch norm uses running statistics of planes),
without the zero taps' two-thirds of the work. Volumes [B, C, D, H, W] take the modules' own 3D path,
unchanged. Parameters are those of the 3D modules; batch norms add running statistics for planes.
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
        if x.shape[1] == 1 and weight.shape[1] > 1 and self.groups == 1:
            # A grey plane meets a kernel of several input channels: convolving the grey repeated into every
            # channel is convolving it once with the kernel summed over its channels (a third of the work).
            weight = weight.sum(dim=1, keepdim=True)
        return F.conv2d(x, weight, self.bias, stride[1:], padding[1:], dilation[1:], self.groups)


class DepthOneBatchNorm3d(nn.BatchNorm3d):
    """Batch norm with running statistics of its own for planes (radiographs), the affine parameters shared.
    Radiographs and CT/MR volumes have very different intensity statistics: with one running mean and variance,
    each modality was normalised in eval mode by a mixture of both, and a demo model that trained well collapsed
    to one embedding at evaluation (validation top-1 at chance). Modality-specific statistics (as in
    domain-specific batch norm) keep each modality's own."""

    plane_running_mean: torch.Tensor
    plane_running_var: torch.Tensor
    plane_num_batches_tracked: torch.Tensor

    def add_plane_statistics(self) -> None:
        self.register_buffer("plane_running_mean", torch.zeros(self.num_features))
        self.register_buffer("plane_running_var", torch.ones(self.num_features))
        self.register_buffer("plane_num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def _check_input_dim(self, input: torch.Tensor) -> None:  # noqa: A002 (torch's name)
        if input.dim() not in (4, 5):
            raise ValueError(f"expected a 4-D (plane) or 5-D (volume) input, got {input.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 5:
            return super().forward(x)
        self._check_input_dim(x)
        if not self.track_running_stats:  # batch statistics always, as torch's BatchNorm without running ones
            return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        momentum = self.momentum
        if self.training:
            self.plane_num_batches_tracked.add_(1)
            if momentum is None:  # a cumulative average, as torch's BatchNorm does
                momentum = 1.0 / float(self.plane_num_batches_tracked)
        return F.batch_norm(
            x,
            self.plane_running_mean,
            self.plane_running_var,
            self.weight,
            self.bias,
            self.training,
            momentum or 0.0,
            self.eps,
        )


class DepthOneMaxPool3d(nn.MaxPool3d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 5:
            return super().forward(x)
        kernel, stride = _triple(self.kernel_size), _triple(self.stride or self.kernel_size)
        padding, dilation = _triple(self.padding), _triple(self.dilation)
        _middle_tap(kernel[0], padding[0], stride[0], dilation[0])
        return F.max_pool2d(x, kernel[1:], stride[1:], padding[1:], dilation[1:], self.ceil_mode)


class DepthOneAdaptiveAvgPool3d(nn.AdaptiveAvgPool3d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 5:
            return super().forward(x)
        size = _triple(self.output_size)  # type: ignore[arg-type]
        if size[0] != 1:
            raise ValueError(f"a depth-1 input cannot pool to depth {size[0]}")
        return F.adaptive_avg_pool2d(x, size[1:])


_PLANE_FORMS: dict[type[nn.Module], type[nn.Module]] = {
    nn.Conv3d: DepthOneConv3d,
    nn.BatchNorm3d: DepthOneBatchNorm3d,
    nn.MaxPool3d: DepthOneMaxPool3d,
    nn.AdaptiveAvgPool3d: DepthOneAdaptiveAvgPool3d,
}


_SPATIAL = (
    nn.modules.conv._ConvNd,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
)


def accept_depth_one(network: nn.Module) -> nn.Module:
    """Let `network`'s 3D convolutions, batch norms and (adaptive average, max) pools also take 4-D (plane) input,
    in place.

    The modules keep their parameters and buffers (only their class changes to a subclass that adds the
    plane path; batch norms gain running statistics for planes, `plane_running_*`); a module whose depth
    settings would not keep a depth-1 input at depth 1 raises when it meets a plane. Returns `network`.
    """
    for module in network.modules():
        plane_form = _PLANE_FORMS.get(type(module))
        if plane_form is not None:
            module.__class__ = plane_form
            if isinstance(module, DepthOneBatchNorm3d):
                module.add_plane_statistics()
        elif isinstance(module, _SPATIAL) and type(module) not in _PLANE_FORMS.values():
            raise ValueError(f"{type(module).__name__} has no depth-1 plane form")
    return network
