"""Depthwise convolution that trains fast on small images on CPU.

Two things make PyTorch's CPU depthwise convolution slow when a supernet trains on 32 px
images, where the last stages see 2x2 and 1x1 maps through 7x7 kernels:

* taps that can only ever read zero padding are still computed, on a slow fallback path
  (a 7x7 depthwise conv of a 1x1 map costs ~200x a 1x1 one);
* its backward is 5-20x slower than the forward.

:func:`depthwise_conv2d` drops the taps that cannot reach the image (exact: they multiply
zeros) and, on CPU with gradients, computes the backward from two ordinary convolutions: the
input gradient is a transposed depthwise convolution, the weight gradient a grouped
convolution of the input with the output gradient (PyTorch's own kernel where that is fast:
3x3 on maps of 4x4 or more). ``benchmarks/train_throughput.py`` shows the effect on a sandwich step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn


def reach(size: int, kernel: int, stride: int, padding: int) -> tuple[int, int]:
    """(first, last) kernel tap along one axis that reads at least one image pixel."""
    out = (size + 2 * padding - kernel) // stride + 1
    return max(0, padding - (out - 1) * stride), min(kernel - 1, padding + size - 1)


def crop_kernel(weight: torch.Tensor, size: tuple[int, int], stride: int,
                padding: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """The taps of a square ``weight`` that reach a ``size`` map, and the padding that keeps
    every output position reading the same pixels (so the output is unchanged)."""
    k = weight.shape[-1]
    cropped, pads = weight, []
    for axis, n in enumerate(size):
        lo, hi = reach(n, k, stride, padding)
        cropped = cropped.narrow(2 + axis, lo, hi - lo + 1)
        pads.append(padding - lo)
        if (n + 2 * pads[-1] - (hi - lo + 1)) // stride != (n + 2 * padding - k) // stride:
            return weight, (padding, padding)  # cropping would change the output size
    return cropped, (pads[0], pads[1])


_FAST = True


@contextmanager
def native_depthwise() -> Iterator[None]:
    """Run PyTorch's own depthwise convolution inside this block (for benchmarks and for
    ruling this module out when debugging)."""
    global _FAST
    saved, _FAST = _FAST, False
    try:
        yield
    finally:
        _FAST = saved


def depthwise_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                     stride: int = 1, padding: int = 0) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride, padding, groups=C)`` for ``weight`` (C, 1, k, k),
    with the same result, computed faster (see the module docstring)."""
    if not _FAST:
        return F.conv2d(x, weight, bias, stride, padding, groups=x.shape[1])
    weight, pad = crop_kernel(weight, tuple(x.shape[-2:]), stride, padding)
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    if x.device.type != "cpu" or not needs_grad:
        return F.conv2d(x, weight, bias, stride, pad, groups=x.shape[1])
    if torch.is_autocast_enabled("cpu"):  # autocast does not reach inside the Function
        dtype = torch.get_autocast_dtype("cpu")
        with torch.autocast("cpu", enabled=False):
            y = _DepthwiseCPU.apply(x.to(dtype), weight.to(dtype), stride, pad)
    else:
        y = _DepthwiseCPU.apply(x, weight, stride, pad)
    return y if bias is None else y + bias.view(1, -1, 1, 1)


class _DepthwiseCPU(torch.autograd.Function):
    """Depthwise conv (no bias) whose backward avoids PyTorch's slow CPU depthwise kernels."""

    @staticmethod
    def forward(ctx, x, weight, stride, pad):
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.pad = stride, pad
        return F.conv2d(x, weight, None, stride, pad, groups=x.shape[1])

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        s, pad = ctx.stride, ctx.pad
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = _grad_input(grad, weight, x.shape, s, pad)
        if ctx.needs_input_grad[1]:
            grad_w = _grad_weight(x, grad, weight.shape, s, pad)
        return grad_x, grad_w, None, None


def _grad_input(grad, weight, shape, s, pad):
    kh, kw = weight.shape[-2:]
    out_pad = [shape[2 + a] - ((grad.shape[2 + a] - 1) * s - 2 * pad[a] + (kh, kw)[a])
               for a in range(2)]
    return F.conv_transpose2d(grad, weight, None, s, pad, out_pad, groups=shape[1])


def _grad_weight(x, grad, wshape, s, pad):
    n, c, h, w = x.shape
    kh, kw = wshape[-2:]
    ho, wo = grad.shape[-2:]
    if kh * kw == 1:  # one tap: a product and a sum
        xs = x[:, :, pad[0]:pad[0] + s * (ho - 1) + 1:s, pad[1]:pad[1] + s * (wo - 1) + 1:s]
        return (xs * grad).sum((0, 2, 3)).view(wshape)
    if kh * kw <= 9 and ho * wo >= 16:  # PyTorch's own kernel is fast for 3x3 on >= 4x4
        return torch.ops.aten.convolution_backward(
            grad, x, grad.new_empty(wshape), None, [s, s], list(pad), [1, 1], False, [0, 0],
            c, [False, True, False])[1]
    # grad_w[c] = correlation of x[:, c] with grad[:, c], summed over the batch: a grouped
    # conv with one group per (channel, image), the output gradient as the kernel
    xi = x.transpose(0, 1).reshape(1, c * n, h, w)
    gk = grad.transpose(0, 1).reshape(c * n, 1, ho, wo)
    r = F.conv2d(xi, gk, None, 1, pad, s, groups=c * n)[..., :kh, :kw]
    return r.reshape(c, n, kh, kw).sum(1, keepdim=True)


def _tracing() -> bool:
    """Whether a graph is being captured (ONNX/torch.export, TorchScript, fvcore): those must
    see the plain convolution the network declares."""
    return (torch.jit.is_tracing() or torch.compiler.is_exporting()
            or torch.onnx.is_in_onnx_export())


class DepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(c, c, k, groups=c)`` (same parameters and state dict) that runs
    :func:`depthwise_conv2d`, except while a graph is traced or exported."""

    def __init__(self, channels: int, kernel: int, stride: int = 1, bias: bool = False):
        super().__init__(channels, channels, kernel, stride, kernel // 2, groups=channels,
                         bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _tracing():
            return super().forward(x)
        return depthwise_conv2d(x, self.weight, self.bias, self.stride[0], self.padding[0])
