"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen et al., 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgessl.ssl.distributed import gather


class NTXentLoss(nn.Module):
    """Each of the 2N embeddings must pick its other view among the 2N-1 others (under DDP:
    among all the other embeddings of the global batch).

    z1, z2: (N, D) embeddings of two views of the same N images -> scalar.

    >>> loss = NTXentLoss(0.5)(torch.randn(8, 16), torch.randn(8, 16))
    """

    def __init__(self, temperature: float = 0.5):
        super().__init__()
        self.temperature = temperature

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
        n = z1.shape[0]
        candidates, offset = gather(z)  # under DDP: the global batch
        logits = z @ candidates.t() / self.temperature
        rows = torch.arange(2 * n, device=z.device)
        logits[rows, offset + rows] = float("-inf")
        target = offset + torch.cat([rows[n:], rows[:n]])
        return F.cross_entropy(logits, target)
