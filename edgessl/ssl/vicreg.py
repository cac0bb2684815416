"""VICReg's loss (Bardes, Ponce, LeCun, 2022): invariance + variance + covariance.

No negatives and no momentum target: the variance term keeps every embedding dimension's
standard deviation across the batch above 1 and the covariance term decorrelates dimensions,
so collapse is prevented explicitly rather than by an asymmetry (BYOL) or by negatives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgessl.ssl.distributed import gather


def variance_covariance(z: torch.Tensor, eps: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean hinge ``relu(1 - std)`` over dimensions, sum of squared off-diagonal covariances
    / D) of the (N, D) batch ``z``."""
    n, d = z.shape
    std = torch.sqrt(z.var(dim=0) + eps)
    z = z - z.mean(dim=0)
    cov = (z.t() @ z) / (n - 1)
    off = cov.pow(2).sum() - cov.diagonal().pow(2).sum()
    return F.relu(1 - std).mean(), off / d


class VICRegLoss(nn.Module):
    """``inv * mse(z1, z2) + var * (v(z1) + v(z2)) / 2 + cov * (c(z1) + c(z2))``, the paper's
    weights 25 / 25 / 1 by default.

    z1, z2: (N, D) expander outputs of two views of the same N images -> scalar.

    >>> loss = VICRegLoss()(torch.randn(8, 16), torch.randn(8, 16))
    """

    def __init__(self, inv: float = 25.0, var: float = 25.0, cov: float = 1.0):
        super().__init__()
        self.inv, self.var, self.cov = inv, var, cov

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        z1, z2 = z1.float(), z2.float()
        # statistics over the global batch under DDP, both views in one collective
        both, _ = gather(torch.cat([z1, z2], dim=1))
        (v1, c1), (v2, c2) = (variance_covariance(z) for z in both.chunk(2, dim=1))
        return (self.inv * F.mse_loss(z1, z2) + self.var * (v1 + v2) / 2
                + self.cov * (c1 + c2))
