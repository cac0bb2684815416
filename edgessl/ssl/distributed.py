"""Negatives from every rank: contrastive losses under DistributedDataParallel compare each
embedding with the embeddings of the whole global batch, not only of its own rank's shard."""

from __future__ import annotations

import torch
import torch.distributed as dist


def world() -> int:
    """The number of processes training together (1 outside torchrun)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather(x: torch.Tensor, with_grad: bool = True) -> tuple[torch.Tensor, int]:
    """(the rows of ``x`` from every rank, concatenated in rank order; the offset of this
    rank's rows). ``with_grad`` lets gradients flow back to the rank that produced each row,
    so the loss is the one a single process would compute on the global batch."""
    n = world()
    if n == 1:
        return x, 0
    if with_grad:
        from torch.distributed.nn.functional import all_gather

        parts = list(all_gather(x.contiguous()))
    else:
        parts = [torch.empty_like(x) for _ in range(n)]
        dist.all_gather(parts, x.detach().contiguous())
    rank = dist.get_rank()
    return torch.cat(parts), rank * x.shape[0]
