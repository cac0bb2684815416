"""torchrun integration: who am I, which device, and small collective helpers.

Training and search both run under torchrun (search shards candidate evaluation over the same
ranks), so these live below both of them."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from edgessl.errors import BadInput


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is bad input."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise BadInput("--device cuda but no CUDA device is available")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if name == "cpu":
        return torch.device("cpu")
    raise BadInput(f"--device {name!r}; allowed: auto, cpu, cuda")


def init_distributed(device: torch.device) -> DistEnv:
    """Join the torchrun process group when launched by torchrun (NCCL on GPU, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistEnv(rank, world, local)


def any_flag(env: DistEnv, flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any rank (stop, NaN)."""
    if not env.active:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t)
    return bool(t.item() > 0)


def gather_objects(env: DistEnv, obj) -> list:
    if not env.active:
        return [obj]
    out = [None] * env.world
    dist.all_gather_object(out, obj)
    return out


def shutdown(env: DistEnv) -> None:
    if env.active and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
