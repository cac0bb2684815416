"""Elastic counterparts of the static blocks: built at the largest spec, configured per spec.

Each block has ``configure(spec)`` (set the active setting for this spec) and
``copy_to(static)`` (write the active weights into the static block ``build(spec)`` made).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from edgessl.ops import layers
from edgessl.ops.elastic import ElasticConv2d, ElasticConvBN
from edgessl.ops.specs import (
    BasicBlockSpec,
    BottleneckSpec,
    ConvSpec,
    LayerSpec,
    MBConvSpec,
    MBHeadSpec,
    PoolHeadSpec,
)


class ElasticStem(nn.Module):
    def __init__(self, spec: ConvSpec):
        super().__init__()
        self.conv = ElasticConvBN(spec.in_ch, spec.out_ch, spec.kernel, spec.stride,
                                  act=layers.activation(spec.act))
        self.pool = nn.MaxPool2d(3, 2, 1) if spec.pool else nn.Identity()

    def configure(self, spec: ConvSpec) -> None:
        self.conv.set_active(spec.out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(x))

    def copy_to(self, static: layers.Stem) -> None:
        self.conv.copy_to(static)


class ElasticSE(nn.Module):
    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.reduce = ElasticConv2d(channels, squeeze, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        self.expand = ElasticConv2d(squeeze, channels, 1, bias=True)
        self.gate = nn.Hardsigmoid(inplace=True)

    def configure(self, channels: int, squeeze: int) -> None:
        self.reduce.set_active(squeeze)
        self.expand.set_active(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.relu(self.reduce(y))))

    def copy_to(self, static: layers.SqueezeExcite) -> None:
        self.reduce.copy_to(static.reduce)
        self.expand.copy_to(static.expand)


class ElasticMBConv(nn.Module):
    def __init__(self, spec: MBConvSpec):
        super().__init__()
        self.expand = (ElasticConvBN(spec.in_ch, spec.mid_ch, 1, act=layers.activation(spec.act))
                       if spec.has_expand else None)
        self.depthwise = ElasticConvBN(spec.mid_ch, spec.mid_ch, spec.kernel, spec.stride,
                                       depthwise=True, act=layers.activation(spec.act))
        self.se = ElasticSE(spec.mid_ch, spec.se_ch) if spec.se_ch else None
        self.project = ElasticConvBN(spec.mid_ch, spec.out_ch, 1)
        self.residual = spec.residual

    def configure(self, spec: MBConvSpec) -> None:
        if self.expand is not None:
            self.expand.set_active(spec.mid_ch)
        self.depthwise.set_active(kernel=spec.kernel)
        if self.se is not None:
            self.se.configure(spec.mid_ch, spec.se_ch)
        self.project.set_active(spec.out_ch)
        self.residual = spec.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.depthwise(y)
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return x + y if self.residual else y

    def copy_to(self, static: layers.MBConv) -> None:
        if self.expand is not None:
            self.expand.copy_to(static.expand)
        self.depthwise.copy_to(static.depthwise)
        if self.se is not None:
            self.se.copy_to(static.se)
        self.project.copy_to(static.project)


class ElasticBottleneck(nn.Module):
    def __init__(self, spec: BottleneckSpec):
        super().__init__()
        self.conv1 = ElasticConvBN(spec.in_ch, spec.mid_ch, 1, act=nn.ReLU(inplace=True))
        self.conv2 = ElasticConvBN(spec.mid_ch, spec.mid_ch, 3, spec.stride,
                                   act=nn.ReLU(inplace=True))
        self.conv3 = ElasticConvBN(spec.mid_ch, spec.out_ch, 1)
        self.downsample = ElasticConvBN(spec.in_ch, spec.out_ch, 1, spec.stride) \
            if spec.downsample else None
        self.relu = nn.ReLU(inplace=True)

    def configure(self, spec: BottleneckSpec) -> None:
        self.conv1.set_active(spec.mid_ch)
        self.conv2.set_active(spec.mid_ch)
        self.conv3.set_active(spec.out_ch)
        if self.downsample is not None:
            self.downsample.set_active(spec.out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.downsample(x) if self.downsample is not None else x
        return self.relu(self.conv3(self.conv2(self.conv1(x))) + shortcut)

    def copy_to(self, static: layers.Bottleneck) -> None:
        for name in ("conv1", "conv2", "conv3"):
            getattr(self, name).copy_to(getattr(static, name))
        if self.downsample is not None:
            self.downsample.copy_to(static.downsample)


class ElasticBasicBlock(nn.Module):
    def __init__(self, spec: BasicBlockSpec):
        super().__init__()
        self.conv1 = ElasticConvBN(spec.in_ch, spec.mid_ch, 3, spec.stride,
                                   act=nn.ReLU(inplace=True))
        self.conv2 = ElasticConvBN(spec.mid_ch, spec.out_ch, 3)
        self.downsample = ElasticConvBN(spec.in_ch, spec.out_ch, 1, spec.stride) \
            if spec.downsample else None
        self.relu = nn.ReLU(inplace=True)

    def configure(self, spec: BasicBlockSpec) -> None:
        self.conv1.set_active(spec.mid_ch)
        self.conv2.set_active(spec.out_ch)
        if self.downsample is not None:
            self.downsample.set_active(spec.out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.downsample(x) if self.downsample is not None else x
        return self.relu(self.conv2(self.conv1(x)) + shortcut)

    def copy_to(self, static: layers.BasicBlock) -> None:
        self.conv1.copy_to(static.conv1)
        self.conv2.copy_to(static.conv2)
        if self.downsample is not None:
            self.downsample.copy_to(static.downsample)


class ElasticMBHead(nn.Module):
    def __init__(self, spec: MBHeadSpec):
        super().__init__()
        self.expand = ElasticConvBN(spec.in_ch, spec.expand_ch, 1, act=layers.activation(spec.act))
        self.mix = ElasticConv2d(spec.expand_ch, spec.out_ch, 1)
        self.act = layers.activation(spec.act)

    def configure(self, spec: MBHeadSpec) -> None:
        self.expand.set_active(spec.expand_ch)
        self.mix.set_active(spec.out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.expand(x).mean((2, 3), keepdim=True)
        return torch.flatten(self.act(self.mix(x)), 1)

    def copy_to(self, static: layers.MBHead) -> None:
        self.expand.copy_to(static.expand)
        self.mix.copy_to(static.mix)


class ElasticPoolHead(layers.PoolHead):
    def configure(self, spec: PoolHeadSpec) -> None:
        pass

    def copy_to(self, static: layers.PoolHead) -> None:
        pass


ELASTIC: dict[str, Callable[[LayerSpec], nn.Module]] = {
    "conv": ElasticStem,
    "mbconv": ElasticMBConv,
    "bottleneck": ElasticBottleneck,
    "basic": ElasticBasicBlock,
    "mbhead": ElasticMBHead,
    "poolhead": ElasticPoolHead,
}


def build_elastic(largest: LayerSpec) -> nn.Module:
    """An elastic block holding the weights of ``largest`` (the spec of the largest choice)."""
    return ELASTIC[largest.kind](largest)


def _permute_out(conv: ElasticConv2d, order: torch.Tensor) -> None:
    conv.weight.data = conv.weight.data[order]
    if conv.bias is not None:
        conv.bias.data = conv.bias.data[order]


def _permute_bn(bn: nn.BatchNorm2d, order: torch.Tensor) -> None:
    for t in (bn.weight, bn.bias):
        t.data = t.data[order]
    bn.running_mean.data = bn.running_mean.data[order]
    bn.running_var.data = bn.running_var.data[order]


def _sort_between(producer: ElasticConvBN, reader: ElasticConvBN) -> None:
    """Order ``producer``'s output channels (conv + BN) by the L1 norm of ``reader``'s
    weights on them, and ``reader``'s input channels to match."""
    order = torch.argsort(reader.conv.weight.abs().sum((0, 2, 3)), descending=True)
    _permute_out(producer.conv, order)
    _permute_bn(producer.bn, order)
    reader.conv.weight.data = reader.conv.weight.data[:, order]


@torch.no_grad()
def sort_mid_channels(block: nn.Module) -> None:
    """Re-order a block's expanded (middle) channels by importance, the L1 norm of the weights
    that read them (Once-for-All's rule), so that smaller expand ratios keep the strongest
    channels. The largest setting computes exactly the same function afterwards."""
    if isinstance(block, ElasticMBConv) and block.expand is not None:
        reader = block.project.conv.weight
        order = torch.argsort(reader.abs().sum((0, 2, 3)), descending=True)
        _permute_out(block.expand.conv, order)
        _permute_bn(block.expand.bn, order)
        _permute_out(block.depthwise.conv, order)
        _permute_bn(block.depthwise.bn, order)
        if block.se is not None:
            block.se.reduce.weight.data = block.se.reduce.weight.data[:, order]
            _permute_out(block.se.expand, order)
        reader.data = reader.data[:, order]
    elif isinstance(block, ElasticBasicBlock):
        _sort_between(block.conv1, block.conv2)
    elif isinstance(block, ElasticBottleneck):
        _sort_between(block.conv2, block.conv3)
        _sort_between(block.conv1, block.conv2)
