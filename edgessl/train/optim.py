"""Optimisers (SGD, LARS, AdamW: a registry) and the warm-up + cosine learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from edgessl.errors import BadInput


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise trust ratios (You et al., 2017), as used by SimCLR and
    BYOL; biases and norm weights (1-d tensors) skip weight decay and adaptation."""

    def __init__(self, params: Iterable, lr: float, momentum: float = 0.9,
                 weight_decay: float = 1e-6, eta: float = 0.001):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                                      eta=eta))

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if p.ndim > 1:
                    g = g.add(p, alpha=group["weight_decay"])
                    w_norm, g_norm = torch.norm(p), torch.norm(g)
                    trust = torch.where((w_norm > 0) & (g_norm > 0),
                                        group["eta"] * w_norm / g_norm, torch.ones_like(w_norm))
                    g = g.mul(trust)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.clone(g).detach()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(g)
                p.add_(state["momentum_buffer"], alpha=-group["lr"])
        return None


@dataclass(frozen=True)
class OptimizerRecipe:
    """``base_lr`` is for a batch of 256 when ``scale_lr`` (linear scaling rule)."""

    make: Callable[..., torch.optim.Optimizer]
    base_lr: float
    weight_decay: float
    scale_lr: bool = True


OPTIMIZERS: dict[str, OptimizerRecipe] = {
    "sgd": OptimizerRecipe(lambda p, lr, wd: torch.optim.SGD(p, lr, momentum=0.9,
                                                             weight_decay=wd), 0.4, 5e-4),
    "lars": OptimizerRecipe(lambda p, lr, wd: LARS(p, lr, weight_decay=wd), 1.0, 1e-6),
    "adamw": OptimizerRecipe(lambda p, lr, wd: torch.optim.AdamW(p, lr, weight_decay=wd),
                             2e-3, 0.05, scale_lr=False),
}


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on biases and norm parameters."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(name: str, model: nn.Module, batch_size: int, lr: float | None = None,
                    weight_decay: float | None = None,
                    base_lr: dict[str, float] | None = None) -> tuple[torch.optim.Optimizer, float]:
    """(optimizer, learning rate used) for ``model``'s trainable parameters. ``base_lr``
    (an objective's per-optimizer rates for batch 256) replaces the recipe's default."""
    if name not in OPTIMIZERS:
        raise BadInput(f"unknown --optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    recipe = OPTIMIZERS[name]
    if lr is None:
        base = (base_lr or {}).get(name, recipe.base_lr)
        lr = base * (batch_size / 256 if recipe.scale_lr else 1.0)
    wd = recipe.weight_decay if weight_decay is None else weight_decay
    return recipe.make(_param_groups(model, wd), lr, wd), lr


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """LR factor: linear warm-up to 1, then cosine decay to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup_steps) / span)))

    return factor
