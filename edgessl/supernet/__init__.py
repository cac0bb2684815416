"""The weight-sharing supernet of a search space: activate any Arch, extract it as a static net.

>>> from edgessl.spaces import get_space
>>> from edgessl.supernet import Supernet
>>> space = get_space("mobilenet")
>>> net = Supernet(space)
>>> net.set_active(space.smallest(128))
>>> sub = net.extract(space.smallest(128))   # ordinary Conv2d/BatchNorm2d/Linear only
"""

from __future__ import annotations

import torch
from torch import nn

from edgessl.arch import Arch
from edgessl.errors import BadInput
from edgessl.models import EdgeNet, build_network
from edgessl.ops.elastic_blocks import build_elastic, sort_mid_channels
from edgessl.spaces import SearchSpace


class Supernet(nn.Module):
    """Holds the largest weights of every block; runs the active Arch's leading slices.

    Elastic depth keeps the first blocks of a stage, elastic kernels the centre of the largest
    kernel, elastic widths the leading channels.
    """

    def __init__(self, space: SearchSpace):
        super().__init__()
        self.space = space
        largest = space.layout(space.largest())
        self.pre = nn.ModuleList(build_elastic(s) for s in largest.pre)
        self.stages = nn.ModuleList(
            nn.ModuleList(build_elastic(s) for s in stage) for stage in largest.stages)
        self.post = nn.ModuleList(build_elastic(s) for s in largest.post)
        self.active: Arch = space.largest()
        self._depths = list(self.active.depths)
        self.set_active(self.active)

    @property
    def space_name(self) -> str:
        return self.space.name

    def set_active(self, arch: Arch) -> None:
        """Make ``arch`` the sub-network that ``forward`` runs."""
        if arch.space != self.space.name:
            raise BadInput(f"arch of space {arch.space!r} given to a {self.space.name!r} supernet")
        layout = self.space.layout(arch)
        for m, s in zip(self.pre, layout.pre, strict=True):
            m.configure(s)
        for blocks, specs in zip(self.stages, layout.stages, strict=True):
            for m, s in zip(blocks, specs, strict=False):
                m.configure(s)
        for m, s in zip(self.post, layout.post, strict=True):
            m.configure(s)
        self._depths = list(arch.depths)
        self.active = arch

    @property
    def feature_dim(self) -> int:
        return self.space.feature_dim(self.active)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.pre:
            x = m(x)
        for blocks, depth in zip(self.stages, self._depths, strict=True):
            for m in blocks[:depth]:
                x = m(x)
        for m in self.post:
            x = m(x)
        return x

    def sort_channels(self) -> None:
        """Re-order every elastic block's middle channels by importance (largest subnet
        unchanged). Call it between training phases: optimizer state is not permuted."""
        for blocks in self.stages:
            for m in blocks:
                sort_mid_channels(m)

    @torch.no_grad()
    def extract(self, arch: Arch | None = None) -> EdgeNet:
        """A standalone :class:`EdgeNet` of ``arch`` (default: the active one) with copied
        weights and BN statistics; the supernet's active setting is left at ``arch``."""
        if arch is not None:
            self.set_active(arch)
        arch = self.active
        net = build_network(arch, init=False)
        modules = [*self.pre, *(m for blocks, d in zip(self.stages, self._depths, strict=True)
                                for m in blocks[:d]), *self.post]
        for elastic, static in zip(modules, net.features, strict=True):
            elastic.copy_to(static)
        return net.train(self.training)
