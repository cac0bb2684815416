"""BYOL's regression loss (Grill et al., 2020): predictions match a momentum target."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def cosine_regression(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mean of ``2 - 2 cos(p, z)`` over rows; ``z`` is treated as a constant."""
    p = F.normalize(p.float(), dim=1)
    z = F.normalize(z.detach().float(), dim=1)
    return (2 - 2 * (p * z).sum(dim=1)).mean()


class BYOLLoss(nn.Module):
    """Symmetric: p1 predicts the target projection of view 2 and p2 that of view 1; each
    local-crop prediction (multi-crop) predicts both. The mean over these pairs.

    p1, p2, *local: (N, D) online predictions; t1, t2: (N, D) target projections of the two
    global views -> scalar in [0, 4].
    """

    def forward(self, p1: torch.Tensor, p2: torch.Tensor, t1: torch.Tensor,
                t2: torch.Tensor, local: Sequence[torch.Tensor] = ()) -> torch.Tensor:
        pairs = [(p1, t2), (p2, t1), *((p, t) for p in local for t in (t1, t2))]
        return torch.stack([cosine_regression(p, t) for p, t in pairs]).mean()
