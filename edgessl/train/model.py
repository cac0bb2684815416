"""What is trained: a backbone (supernet or standalone) + an SSL objective, and the sandwich
rule with in-place distillation as one ``forward`` (so one backward, and DDP works as usual)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from edgessl.arch import Arch
from edgessl.errors import BadInput
from edgessl.ops.init import zero_init_residuals
from edgessl.ssl import Objective, build_objective, distill_loss


class SSLModel(nn.Module):
    """``forward(x1, x2, students, local)`` -> (total loss, per-subnet losses, detached).

    With a supernet, the largest subnet is trained with the SSL loss (on the two global views
    and any local crops), and each student Arch (smallest + sampled) regresses the largest's
    detached online embedding of the same global views. A standalone backbone has no students.
    """

    def __init__(self, backbone: nn.Module, objective: Objective, largest: Arch | None = None):
        super().__init__()
        self.backbone, self.objective, self.largest = backbone, objective, largest

    def _activate(self, arch: Arch | None) -> None:
        if arch is not None:
            self.backbone.set_active(arch)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, students: list[Arch] = (),
                local: Sequence[torch.Tensor] = ()) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([x1, x2])
        self._activate(self.largest)
        e = self.objective.embed(self.backbone(x))
        e1, e2 = e.chunk(2)
        # local crops share one forward (their own size, so their own BatchNorm batch)
        e_local = (self.objective.embed(self.backbone(torch.cat(local))).chunk(len(local))
                   if local else ())
        losses = [self.objective.loss(e1, e2, x1, x2, e_local)]
        teacher = e.detach()
        for arch in students:
            self._activate(arch)
            losses.append(distill_loss(self.objective.embed(self.backbone(x)), teacher))
        self._activate(self.largest)
        total = torch.stack(losses).sum()
        return total, torch.stack([loss.detach().float() for loss in losses])


def build_backbone(space: str, arch: Arch | None) -> tuple[nn.Module, Arch | str | None]:
    """(backbone, what it is): a supernet (ref None), a fixed Arch, or a baseline name,
    freshly initialised for SSL training (residual branches start at zero)."""
    from edgessl.models import build_model
    from edgessl.spaces import get_space
    from edgessl.supernet import Supernet

    if arch is not None:
        backbone, ref = build_model(arch), arch
    elif space.startswith("baseline:"):
        from edgessl.baselines import get_baseline

        ref = get_baseline(space).name
        backbone = build_model(ref)
    else:
        backbone, ref = Supernet(get_space(space)), None
    zero_init_residuals(backbone)
    return backbone, ref


def feature_dim(backbone: nn.Module) -> int:
    return int(backbone.feature_dim)


def init_from(backbone: nn.Module, ref: Arch | str | None, path: str) -> None:
    """Start from the weights of checkpoint ``path``: a standalone network from the same
    network (fine-tuning, e.g. a searched network's inherited weights), a supernet from a
    supernet of the same space (continuing the shipped one on new data or at a new
    resolution). Only the backbone is taken: heads, optimiser and schedule start afresh."""
    from edgessl.checkpoint import load_network, load_weights

    if ref is None:
        source = load_network(path, supernet=True)
        if source.space != backbone.space.name:
            raise BadInput(f"--init-from {path} holds a {source.space!r} supernet, not the "
                           f"{backbone.space.name!r} one trained here (--space)")
        load_weights(backbone, source.module.state_dict(), path)
        return
    source = load_network(path)
    if source.ref != ref:
        raise BadInput(f"--init-from {path} holds {source.name}, not the network trained "
                       f"here ({ref})")
    load_weights(backbone, source.module.state_dict(), path)


def build_ssl_model(space: str, arch: Arch | None, ssl: str, temperature: float | None = None,
                    target_momentum: float | None = None,
                    init: str | None = None) -> tuple[SSLModel, Arch | str | None]:
    """The model to train and its reference (None for a supernet); ``init`` names a
    checkpoint of the same network to start from."""
    backbone, ref = build_backbone(space, arch)
    if init is not None:
        init_from(backbone, ref, init)
    largest = None
    if ref is None:
        largest = backbone.space.largest()
        backbone.set_active(largest)
    objective = build_objective(ssl, backbone, feature_dim(backbone), temperature,
                                target_momentum)
    return SSLModel(backbone, objective, largest), ref


def sample_students(space, seed: int, step: int, n: int) -> list[Arch]:
    """Smallest + ``n`` subnets drawn from a generator seeded by (seed, step): the same on
    every rank and after a resume, with no sampler state to save."""
    rng = np.random.default_rng([seed, step])
    top = space.resolutions[-1]
    return [space.smallest(top), *(space.sample(rng, top) for _ in range(n))]
