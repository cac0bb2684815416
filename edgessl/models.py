"""Standalone networks: an Arch built from ordinary layers, or a torchvision baseline by name."""

from __future__ import annotations

import torch
from torch import nn

from edgessl.arch import Arch
from edgessl.ops import layers
from edgessl.ops.specs import LinearSpec
from edgessl.spaces import get_space


class EdgeNet(nn.Module):
    """A static network: ``features`` (stem, blocks, head to a flat vector) + ``classifier``.

    ``classifier`` is an ``nn.Identity`` for a backbone (``num_classes=0``).
    """

    def __init__(self, arch: Arch, num_classes: int = 0, init: bool = True):
        super().__init__()
        self.arch = arch
        specs = get_space(arch.space).layout(arch).all()
        self.features = nn.Sequential(*[layers.build(s) for s in specs])
        self.feature_dim = specs[-1].out_ch
        self.classifier = (layers.build(LinearSpec(self.feature_dim, num_classes))
                           if num_classes else nn.Identity())
        if init:
            layers.init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_network(arch: Arch, num_classes: int = 0, init: bool = True) -> EdgeNet:
    """A standalone network for ``arch``, freshly initialised (``init=False`` skips the
    initialisation, for networks whose weights are about to be copied in)."""
    return EdgeNet(arch, num_classes, init)


def build_model(ref: Arch | str, num_classes: int = 0) -> nn.Module:
    """A fresh backbone for an Arch or a baseline name (the one factory behind checkpoints,
    training and evaluation)."""
    if isinstance(ref, Arch):
        return build_network(ref, num_classes)
    from edgessl.baselines import build_baseline

    return build_baseline(ref, num_classes)
