"""Projection and prediction heads: one generic MLP built from (in, out, batchnorm, act) rows.

The first linear layer reads its input width from the tensor (leading columns of its largest
weight), so subnets of an elastic-width supernet share the largest subnet's head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ElasticLinear(nn.Linear):
    """A linear layer that accepts any input width up to ``in_features`` (leading columns)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight[:, :x.shape[1]], self.bias)


class MLPHead(nn.Module):
    """Rows of ``(in_dim, out_dim, batchnorm, relu)``; e.g. SimCLR's 2-layer projector is
    ``[(d, h, True, True), (h, o, False, False)]``. Input (N, <=d) -> output (N, o)."""

    def __init__(self, rows: list[tuple[int, int, bool, bool]]):
        super().__init__()
        layers: list[nn.Module] = []
        for i, (din, dout, bn, act) in enumerate(rows):
            linear = ElasticLinear if i == 0 else nn.Linear
            layers.append(linear(din, dout, bias=not bn))
            if bn:
                layers.append(nn.BatchNorm1d(dout))
            if act:
                layers.append(nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class SimCLRProjectionHead(MLPHead):
    """SimCLR: Linear-BN-ReLU-Linear (Chen et al., 2020)."""

    def __init__(self, in_dim: int, hidden: int = 512, out: int = 128):
        super().__init__([(in_dim, hidden, True, True), (hidden, out, False, False)])


class BYOLProjectionHead(MLPHead):
    """BYOL projector and predictor: Linear-BN-ReLU-Linear (Grill et al., 2020)."""

    def __init__(self, in_dim: int, hidden: int = 1024, out: int = 256):
        super().__init__([(in_dim, hidden, True, True), (hidden, out, False, False)])


class MoCoV3ProjectionHead(MLPHead):
    """MoCo v3: Linear-BN-ReLU-Linear-BN (Chen, Xie, He, 2021); the last BN has no affine in
    the paper, a plain BN here."""

    def __init__(self, in_dim: int, hidden: int = 1024, out: int = 256):
        super().__init__([(in_dim, hidden, True, True), (hidden, out, True, False)])


class VICRegExpanderHead(MLPHead):
    """VICReg's expander: (Linear-BN-ReLU) x 2, Linear (Bardes et al., 2022; 8192 wide
    there, 1024 here to keep a CPU step's head cost near BYOL's projector + predictor)."""

    def __init__(self, in_dim: int, hidden: int = 1024, out: int = 1024):
        super().__init__([(in_dim, hidden, True, True), (hidden, hidden, True, True),
                          (hidden, out, False, False)])
