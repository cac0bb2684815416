"""SSL training starts every residual branch at zero: each residual block is the identity."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgessl.baselines import build_baseline
from edgessl.models import build_network
from edgessl.ops import layers
from edgessl.ops.init import residual_bn, zero_init_residuals
from edgessl.spaces import get_space
from edgessl.supernet import Supernet
from edgessl.train.model import build_backbone


@pytest.mark.parametrize(("name", "expected"), [
    ("resnet18", 8), ("resnet50", 16), ("mobilenet_v2", 10), ("mobilenet_v3_small", 6)])
def test_counts_the_residual_blocks_of_baselines(name, expected):
    assert zero_init_residuals(build_baseline(name)) == expected


@pytest.mark.parametrize("space", ["mobilenet", "resnet", "resnet18"])
def test_residual_blocks_start_as_identity(space):
    net = build_network(get_space(space).largest(128)).eval()
    assert zero_init_residuals(net) > 0
    blocks = [m for m in net.modules()
              if (isinstance(m, layers.MBConv) and m.residual)
              or (isinstance(m, (layers.Bottleneck, layers.BasicBlock))
                  and isinstance(m.downsample, nn.Identity))]
    assert blocks
    for block in blocks:
        last = {layers.MBConv: "project", layers.Bottleneck: "conv3",
                layers.BasicBlock: "conv2"}[type(block)]
        last = getattr(block, last)
        x = torch.randn(2, last[0].out_channels, 5, 5).relu()  # a ResNet block's input is >= 0
        torch.testing.assert_close(block(x), x)


@pytest.mark.parametrize("space", ["mobilenet", "resnet18", "baseline:resnet18",
                                   "baseline:mobilenet_v2"])
def test_training_backbones_are_zero_initialised(space):
    backbone, _ = build_backbone(space, None)
    zeroed = [residual_bn()[type(m)](m) for m in backbone.modules() if type(m) in residual_bn()]
    zeroed = [bn for bn in zeroed if bn is not None]
    assert zeroed and all(isinstance(bn, nn.BatchNorm2d) for bn in zeroed)
    assert all(bool((bn.weight == 0).all()) for bn in zeroed)


@pytest.mark.parametrize("resolution", [48, 64])
def test_untrained_resnet18_sees_the_same_289_pixels_at_any_size(resolution):
    """Why the random-init reference depends on the resolution (BENCHMARKS, seventh round):
    with zero branches the net is its stem plus strided 1x1 projections, which read fixed
    pixel bands (rows and columns 0-5 and 27-37) of whatever image they get."""
    space = get_space("resnet18")
    net = Supernet(space).extract(space.largest())
    zero_init_residuals(net)
    x = torch.randn(2, 3, resolution, resolution, requires_grad=True)
    net.eval()(x).sum().backward()
    seen = x.grad[0].abs().sum(0) > 0
    bands = [*range(0, 6), *range(27, 38)]
    assert seen.nonzero()[:, 0].unique().tolist() == bands
    assert seen.nonzero()[:, 1].unique().tolist() == bands
    assert int(seen.sum()) == 289
