"""MoCo v3's contrastive loss (Chen, Xie, He, 2021): queries against momentum keys."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from edgessl.ssl.distributed import gather


class MoCoV3Loss(nn.Module):
    """InfoNCE of q (online predictions) against k (momentum-encoder projections) of the other
    view, the positives on the diagonal, scaled by 2*temperature as in the paper; under DDP the
keys of every rank are the negatives, as in the paper.

    q1, q2, k1, k2: (N, D) -> scalar. Local-crop queries (multi-crop) are scored against both
    keys; the loss is then twice the mean over all pairs (the paper's sum of two without them).
    """

    def __init__(self, temperature: float = 0.2):
        super().__init__()
        self.temperature = temperature

    def _one(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        q = F.normalize(q.float(), dim=1)
        k = F.normalize(k.detach().float(), dim=1)
        keys, offset = gather(k, with_grad=False)  # under DDP: keys of the global batch
        logits = q @ keys.t() / self.temperature
        target = offset + torch.arange(q.shape[0], device=q.device)
        return F.cross_entropy(logits, target) * (2 * self.temperature)

    def forward(self, q1: torch.Tensor, q2: torch.Tensor, k1: torch.Tensor,
                k2: torch.Tensor, local: Sequence[torch.Tensor] = ()) -> torch.Tensor:
        pairs = [(q1, k2), (q2, k1), *((q, k) for q in local for k in (k1, k2))]
        return 2 * torch.stack([self._one(q, k) for q, k in pairs]).mean()
