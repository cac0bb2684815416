"""Elastic layers (Once-for-All style): each owns the largest weights and runs a leading slice.

The input width is read from the tensor; the output width and kernel size are the active
setting, set with one typed call. ``copy_to`` writes the active slice into an ordinary layer of
the matching shape, which is how a supernet hands out a standalone copy of a subnet. Elastic
kernels share the centre of the largest kernel; elastic widths keep the leading channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgessl.ops.depthwise import depthwise_conv2d


def _centre(weight: torch.Tensor, k: int) -> torch.Tensor:
    kmax = weight.shape[-1]
    start = (kmax - k) // 2
    return weight[..., start:start + k, start:start + k]


class ElasticConv2d(nn.Module):
    """A convolution whose output width and (odd) kernel size can shrink.

    ``depthwise=True`` makes a depthwise conv whose width follows the input tensor.
    """

    def __init__(self, max_in: int, max_out: int, max_kernel: int = 1, stride: int = 1,
                 depthwise: bool = False, bias: bool = False):
        super().__init__()
        self.depthwise = depthwise
        self.stride = stride
        self.max_kernel = max_kernel
        cin = 1 if depthwise else max_in
        self.weight = nn.Parameter(torch.empty(max_out, cin, max_kernel, max_kernel))
        self.bias = nn.Parameter(torch.zeros(max_out)) if bias else None
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.active_out = max_out
        self.active_kernel = max_kernel

    def set_active(self, out_channels: int | None = None, kernel: int | None = None) -> None:
        """Choose the active output width and kernel size (None keeps the current value)."""
        if out_channels is not None:
            if out_channels > self.weight.shape[0]:
                raise ValueError(f"out_channels {out_channels} > max {self.weight.shape[0]}")
            self.active_out = out_channels
        if kernel is not None:
            if kernel > self.max_kernel or kernel % 2 == 0:
                raise ValueError(f"kernel {kernel} not an odd size <= {self.max_kernel}")
            self.active_kernel = kernel

    def active_weight(self, cin: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        cout = cin if self.depthwise else self.active_out
        w = self.weight[:cout] if self.depthwise else self.weight[:cout, :cin]
        bias = None if self.bias is None else self.bias[:cout]
        return _centre(w, self.active_kernel), bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cin = x.shape[1]
        w, b = self.active_weight(cin)
        if self.depthwise:
            return depthwise_conv2d(x, w, b, self.stride, self.active_kernel // 2)
        return F.conv2d(x, w, b, self.stride, self.active_kernel // 2)

    @torch.no_grad()
    def copy_to(self, conv: nn.Conv2d) -> None:
        """Write the slice matching ``conv``'s shape into it."""
        cin = conv.in_channels
        cout = conv.out_channels
        k = conv.kernel_size[0]
        w = self.weight[:cout] if self.depthwise else self.weight[:cout, :cin]
        conv.weight.copy_(_centre(w, k))
        if conv.bias is not None:
            conv.bias.copy_(self.bias[:cout])


class ElasticBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over the leading ``C`` channels of its largest statistics, C read from input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        factor = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                      else self.momentum)
        use_batch = self.training or not self.track_running_stats
        return F.batch_norm(x, self.running_mean[:c], self.running_var[:c], self.weight[:c],
                            self.bias[:c], use_batch, factor, self.eps)

    @torch.no_grad()
    def copy_to(self, bn: nn.BatchNorm2d) -> None:
        c = bn.num_features
        bn.weight.copy_(self.weight[:c])
        bn.bias.copy_(self.bias[:c])
        bn.running_mean.copy_(self.running_mean[:c])
        bn.running_var.copy_(self.running_var[:c])
        bn.num_batches_tracked.copy_(self.num_batches_tracked)


class ElasticConvBN(nn.Module):
    """Elastic conv + elastic BN + optional activation, mirroring :class:`ConvBNAct`."""

    def __init__(self, max_in: int, max_out: int, max_kernel: int = 1, stride: int = 1,
                 depthwise: bool = False, act: nn.Module | None = None):
        super().__init__()
        self.conv = ElasticConv2d(max_in, max_out, max_kernel, stride, depthwise)
        self.bn = ElasticBatchNorm2d(max_out)
        self.act = act if act is not None else nn.Identity()

    def set_active(self, out_channels: int | None = None, kernel: int | None = None) -> None:
        self.conv.set_active(out_channels, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    def copy_to(self, seq: nn.Sequential) -> None:
        """Copy into a static ``ConvBNAct`` (conv at index 0, BN at index 1)."""
        self.conv.copy_to(seq[0])
        self.bn.copy_to(seq[1])
