"""The fast depthwise convolution gives PyTorch's results (outputs and gradients)."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgessl.ops.depthwise import (
    DepthwiseConv2d,
    crop_kernel,
    depthwise_conv2d,
    native_depthwise,
)

CASES = list(itertools.product([1, 2, 3, 4, 5, 8, 16], [1, 3, 5, 7], [1, 2], [False, True]))


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize(("size", "kernel", "stride", "bias"), CASES)
def test_outputs_and_gradients_equal_conv2d(size, kernel, stride, bias, fmt):
    g = torch.Generator().manual_seed(size * 100 + kernel * 10 + stride)
    c = 5
    # a non-square map, so each axis is cropped on its own; training runs channels-last
    x = torch.randn(3, c, size, size + 1, generator=g, dtype=torch.float64)
    x = x.contiguous(memory_format=fmt).requires_grad_()
    w = torch.randn(c, 1, kernel, kernel, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(c, generator=g, dtype=torch.float64, requires_grad=True) if bias else None
    inputs = [x, w] + ([b] if bias else [])
    ref = F.conv2d(x, w, b, stride, kernel // 2, groups=c)
    out = depthwise_conv2d(x, w, b, stride, kernel // 2)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-11)
    grad = torch.randn(ref.shape, generator=g, dtype=torch.float64).contiguous(memory_format=fmt)
    for a, e in zip(torch.autograd.grad(out, inputs, grad), torch.autograd.grad(ref, inputs, grad),
                    strict=True):
        torch.testing.assert_close(a, e, rtol=0, atol=1e-10)


def test_taps_that_only_read_padding_are_dropped():
    w = torch.randn(4, 1, 7, 7)
    assert crop_kernel(w, (1, 1), 1, 3)[0].shape[-2:] == (1, 1)
    assert crop_kernel(w, (2, 2), 1, 3)[0].shape[-2:] == (3, 3)
    assert crop_kernel(w, (2, 2), 2, 3)[0].shape[-2:] == (2, 2)
    assert crop_kernel(w, (1, 4), 1, 3)[0].shape[-2:] == (1, 7)
    assert crop_kernel(w, (7, 7), 1, 3)[0].shape[-2:] == (7, 7)


def test_native_switch_gives_the_same_gradients_in_float32():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 16, 4, 4, generator=g, requires_grad=True)
    w = torch.randn(16, 1, 7, 7, generator=g, requires_grad=True)
    fast = torch.autograd.grad(depthwise_conv2d(x, w, None, 1, 3).square().sum(), [x, w])
    with native_depthwise():
        slow = torch.autograd.grad(depthwise_conv2d(x, w, None, 1, 3).square().sum(), [x, w])
    for a, e in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-3)


def test_cpu_bf16_autocast_matches_the_native_conv_and_keeps_fp32_weight_grads():
    """Under CPU bf16 autocast the op computes in bf16 like ``F.conv2d`` does there (autocast
    cannot reach inside an autograd Function, so the op casts itself), and the float32 weight
    still gets a float32 gradient."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 8, 6, 6, generator=g).contiguous(memory_format=torch.channels_last)
    w = torch.randn(8, 1, 5, 5, generator=g, requires_grad=True)
    x.requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = depthwise_conv2d(x, w, None, 1, 2)
        ref = F.conv2d(x, w, None, 1, 2, groups=8)
    assert out.dtype == ref.dtype == torch.bfloat16
    torch.testing.assert_close(out, ref, rtol=2e-2, atol=2e-2)
    gx, gw = torch.autograd.grad(out.float().square().sum(), [x, w])
    ex, ew = torch.autograd.grad(ref.float().square().sum(), [x, w])
    assert gw.dtype == torch.float32 and gx.dtype == torch.float32
    torch.testing.assert_close(gw, ew, rtol=5e-2, atol=0.5)
    torch.testing.assert_close(gx, ex, rtol=5e-2, atol=0.5)


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:FutureWarning")
def test_module_is_a_conv2d_and_traces_the_full_kernel():
    conv = DepthwiseConv2d(4, 7, stride=1)
    plain = nn.Conv2d(4, 4, 7, 1, 3, groups=4, bias=False)
    assert isinstance(conv, nn.Conv2d)
    assert conv.state_dict().keys() == plain.state_dict().keys()
    plain.load_state_dict(conv.state_dict())
    # traced on a 1x1 map (where the fast path would use only the centre tap), the graph
    # must still hold the declared 7x7 conv and so be right on a larger map
    traced = torch.jit.trace(conv, torch.randn(1, 4, 1, 1))
    big = torch.randn(2, 4, 9, 9)
    torch.testing.assert_close(traced(big), plain(big))


def test_torch_export_sees_the_declared_kernel():
    """ONNX export goes through torch.export: no weight slicing may enter its graph."""
    conv = DepthwiseConv2d(4, 7).eval()
    program = torch.export.export(conv, (torch.randn(1, 4, 1, 1),))
    targets = [str(n.target) for n in program.graph.nodes if n.op == "call_function"]
    assert any("conv" in t for t in targets)
    assert not any("slice" in t or "narrow" in t for t in targets), targets
