"""Zero-initialised residual branches ("zero-gamma", Goyal et al. 2017), for every residual
block edgessl trains: its own static and elastic blocks and torchvision's.

Each residual block starts as the identity, so a freshly initialised deep network behaves like
a shallow one and its deep layers join in as they learn. At the 28-48 px of the built-in data
sets this matters: with the usual init, each extra block of a random MobileNetV3 blurs the
features further (kNN on Fashion-MNIST falls from 66% after the stem's stage to 25% at the
output), and self-supervised training starts from there (pilots in BENCHMARKS.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from torch import nn

from edgessl.ops import elastic_blocks, layers


def _last_bn(module: nn.Module) -> nn.BatchNorm2d | None:
    bns = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    return bns[-1] if bns else None


@functools.cache
def residual_bn() -> dict[type, Callable[[nn.Module], nn.BatchNorm2d | None]]:
    """Block type -> the BatchNorm that closes its residual branch (None: not residual).
    Built on first use: torchvision's blocks need torchvision, seconds to import."""
    from torchvision.models import mobilenetv2, mobilenetv3, resnet

    return {
        layers.MBConv: lambda m: m.project[1] if m.residual else None,
        layers.Bottleneck: lambda m: m.conv3[1],
        layers.BasicBlock: lambda m: m.conv2[1],
        elastic_blocks.ElasticMBConv: lambda m: m.project.bn if m.residual else None,
        elastic_blocks.ElasticBottleneck: lambda m: m.conv3.bn,
        elastic_blocks.ElasticBasicBlock: lambda m: m.conv2.bn,
        resnet.BasicBlock: lambda m: m.bn2,
        resnet.Bottleneck: lambda m: m.bn3,
        mobilenetv2.InvertedResidual: lambda m: _last_bn(m.conv) if m.use_res_connect else None,
        mobilenetv3.InvertedResidual: lambda m: _last_bn(m.block) if m.use_res_connect else None,
    }


def zero_init_residuals(module: nn.Module) -> int:
    """Set the scale of the last BatchNorm of every residual branch in ``module`` to zero;
    returns how many branches were zeroed."""
    count = 0
    for m in module.modules():
        getter = residual_bn().get(type(m))
        bn = getter(m) if getter is not None else None
        if bn is not None:
            nn.init.zeros_(bn.weight)
            count += 1
    return count
