"""Contrastive losses (and VICReg's batch statistics) under DDP see the global batch: two
gloo ranks, each with half of the batch, give the loss and the gradients one process computes
on the whole batch."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from edgessl.ssl import MoCoV3Loss, NTXentLoss, VICRegLoss

N, D, WORLD = 6, 8, 2


def _batch() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(N, D, generator=g, dtype=torch.float64) for _ in range(4)]


def _losses(parts: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    z1, z2, k1, k2 = parts
    return {"ntxent": NTXentLoss(0.3)(z1, z2), "mocov3": MoCoV3Loss(0.3)(z1, z2, k1, k2),
            "vicreg": VICRegLoss()(z1, z2)}


def _rank(rank: int, init: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=WORLD)
    try:
        torch.set_num_threads(1)
        half = slice(rank * N // WORLD, (rank + 1) * N // WORLD)
        results = {}
        for name in ("ntxent", "mocov3", "vicreg"):
            local = [t[half].clone().requires_grad_() for t in _batch()]
            loss = _losses(local)[name]
            (loss / WORLD).backward()  # DDP averages gradients over ranks
            total = loss.detach().clone()
            dist.all_reduce(total)
            results[name] = (total / WORLD, local[0].grad, local[1].grad)
        torch.save(results, f"{out}/rank{rank}.pt")
        # no rank tears gloo down while the other still finishes its last collective (as
        # edgessl.dist.shutdown does); without it a rank aborted now and then
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_two_ranks_match_one_process_on_the_global_batch(tmp_path):
    mp.spawn(_rank, args=(f"file://{tmp_path}/store", str(tmp_path)), nprocs=WORLD)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    for name in ("ntxent", "mocov3", "vicreg"):
        full = [t.clone().requires_grad_() for t in _batch()]
        loss = _losses(full)[name]
        loss.backward()
        for r, res in enumerate(ranks):
            half = slice(r * N // WORLD, (r + 1) * N // WORLD)
            torch.testing.assert_close(res[name][0], loss.detach())
            torch.testing.assert_close(res[name][1], full[0].grad[half])
            torch.testing.assert_close(res[name][2], full[1].grad[half])
