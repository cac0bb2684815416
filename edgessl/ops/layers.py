"""Ordinary PyTorch modules built from block specs (Conv2d, BatchNorm2d, activations, Linear).

These are what export, profiling and standalone training see: static graphs, no slicing.
``build(spec)`` is the single entry point; a registry maps each spec kind to its module.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from edgessl.ops.depthwise import DepthwiseConv2d
from edgessl.ops.specs import (
    BasicBlockSpec,
    BottleneckSpec,
    ConvSpec,
    LayerSpec,
    LinearSpec,
    MBConvSpec,
    MBHeadSpec,
    PoolHeadSpec,
)

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "hswish": lambda: nn.Hardswish(inplace=True),
}


def activation(name: str) -> nn.Module:
    """A fresh activation module by name ('relu', 'hswish')."""
    return ACTIVATIONS[name]()


class ConvBNAct(nn.Sequential):
    """Conv (no bias) + BatchNorm + optional activation."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
                 act: str | None = None):
        depthwise = groups > 1 and groups == cin == cout
        conv = (DepthwiseConv2d(cin, k, stride) if depthwise
                else nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False))
        layers: list[nn.Module] = [
            conv,
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(activation(act))
        super().__init__(*layers)


class Stem(nn.Sequential):
    """The first convolution, with ResNet's max-pool when ``spec.pool``."""

    def __init__(self, spec: ConvSpec):
        layers: list[nn.Module] = list(
            ConvBNAct(spec.in_ch, spec.out_ch, spec.kernel, spec.stride, act=spec.act))
        if spec.pool:
            layers.append(nn.MaxPool2d(3, 2, 1))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation with a hard-sigmoid gate (MobileNetV3)."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.relu = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(squeeze, channels, 1)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.relu(self.reduce(y))))


class MBConv(nn.Module):
    """Inverted residual block (MobileNetV2/V3) built from an :class:`MBConvSpec`."""

    def __init__(self, spec: MBConvSpec):
        super().__init__()
        self.residual = spec.residual
        self.expand = (ConvBNAct(spec.in_ch, spec.mid_ch, 1, act=spec.act)
                       if spec.has_expand else nn.Identity())
        self.depthwise = ConvBNAct(spec.mid_ch, spec.mid_ch, spec.kernel, spec.stride,
                                   groups=spec.mid_ch, act=spec.act)
        self.se = SqueezeExcite(spec.mid_ch, spec.se_ch) if spec.se_ch else nn.Identity()
        self.project = ConvBNAct(spec.mid_ch, spec.out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.residual else y


class Bottleneck(nn.Module):
    """ResNet bottleneck built from a :class:`BottleneckSpec`."""

    def __init__(self, spec: BottleneckSpec):
        super().__init__()
        self.conv1 = ConvBNAct(spec.in_ch, spec.mid_ch, 1, act="relu")
        self.conv2 = ConvBNAct(spec.mid_ch, spec.mid_ch, 3, spec.stride, act="relu")
        self.conv3 = ConvBNAct(spec.mid_ch, spec.out_ch, 1)
        self.downsample = (ConvBNAct(spec.in_ch, spec.out_ch, 1, spec.stride)
                           if spec.downsample else nn.Identity())
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv3(self.conv2(self.conv1(x))) + self.downsample(x))


class BasicBlock(nn.Module):
    """ResNet basic block built from a :class:`BasicBlockSpec`."""

    def __init__(self, spec: BasicBlockSpec):
        super().__init__()
        self.conv1 = ConvBNAct(spec.in_ch, spec.mid_ch, 3, spec.stride, act="relu")
        self.conv2 = ConvBNAct(spec.mid_ch, spec.out_ch, 3)
        self.downsample = (ConvBNAct(spec.in_ch, spec.out_ch, 1, spec.stride)
                           if spec.downsample else nn.Identity())
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.downsample(x))


class MBHead(nn.Module):
    """MobileNetV3 head: 1x1 expand, global pool, 1x1 feature mix (no BN), flatten."""

    def __init__(self, spec: MBHeadSpec):
        super().__init__()
        self.expand = ConvBNAct(spec.in_ch, spec.expand_ch, 1, act=spec.act)
        self.mix = nn.Conv2d(spec.expand_ch, spec.out_ch, 1, bias=False)
        self.act = activation(spec.act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.expand(x).mean((2, 3), keepdim=True)
        return torch.flatten(self.act(self.mix(x)), 1)


class PoolHead(nn.Module):
    """Global average pool and flatten."""

    def __init__(self, spec: PoolHeadSpec):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x.mean((2, 3)), 1)


BUILDERS: dict[str, Callable[[LayerSpec], nn.Module]] = {
    "conv": Stem,
    "mbconv": MBConv,
    "bottleneck": Bottleneck,
    "basic": BasicBlock,
    "mbhead": MBHead,
    "poolhead": PoolHead,
    "linear": lambda s: nn.Linear(s.in_ch, s.out_ch),
}


def build(spec: LayerSpec) -> nn.Module:
    """An ordinary module for ``spec``, freshly initialised."""
    return BUILDERS[spec.kind](spec)


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal convs, unit BN, small-normal linear: the usual ImageNet recipe."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


__all__ = ["build", "init_weights", "LinearSpec", "activation", "MBConv", "Bottleneck",
           "BasicBlock"]
