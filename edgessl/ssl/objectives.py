"""SSL objectives: heads + loss (+ momentum target) behind one interface, and their registry.

An objective turns backbone features into the *online embedding* (``embed``) and scores the
embeddings of two views (``loss``). The sandwich rule distils subnets onto the largest subnet's
detached online embedding, so every objective supports in-place distillation the same way.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn

from edgessl.errors import BadInput
from edgessl.ssl.byol import BYOLLoss, cosine_regression
from edgessl.ssl.heads import (
    BYOLProjectionHead,
    MLPHead,
    MoCoV3ProjectionHead,
    SimCLRProjectionHead,
    VICRegExpanderHead,
)
from edgessl.ssl.mocov3 import MoCoV3Loss
from edgessl.ssl.ntxent import NTXentLoss
from edgessl.ssl.vicreg import VICRegLoss


class Objective(nn.Module):
    """Base class. ``momentum`` (None: no target) is the EMA rate at step 0; it rises to 1 on
    a cosine schedule, as in BYOL and MoCo v3. ``multi_crop``: ``loss`` also takes the
    embeddings of local crops, scored against the global views' targets."""

    name = ""
    momentum: float | None = None
    default_temperature: float | None = None
    multi_crop = False
    # optimizer name -> base learning rate (batch 256) replacing the optimizer's default
    base_lr: dict[str, float] = {}

    def embed(self, features: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def loss(self, e1: torch.Tensor, e2: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor,
             local: Sequence[torch.Tensor] = ()) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    # ---- momentum target (BYOL, MoCo v3) ------------------------------------------------
    def attach_target(self, backbone: nn.Module, projector: nn.Module) -> None:
        """Keep a momentum copy of ``backbone`` + ``projector`` (no gradients)."""
        self.target = nn.Sequential(copy.deepcopy(backbone), copy.deepcopy(projector))
        for p in self.target.parameters():
            p.requires_grad_(False)

    def target_embed(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.no_grad():
            return self.target(torch.cat([x1, x2])).chunk(2)

    @torch.no_grad()
    def update_target(self, backbone: nn.Module, projector: nn.Module, progress: float) -> None:
        """EMA step towards the online weights; ``progress`` in [0, 1] of training."""
        if self.momentum is None:
            return
        m = 1 - (1 - self.momentum) * (math.cos(math.pi * min(progress, 1.0)) + 1) / 2
        online = [*backbone.parameters(), *projector.parameters()]
        for t, o in zip(self.target.parameters(), online, strict=True):
            t.mul_(m).add_(o.detach(), alpha=1 - m)
        online_buffers = [*backbone.buffers(), *projector.buffers()]
        for t, o in zip(self.target.buffers(), online_buffers, strict=True):
            t.copy_(o)


class _ProjectorObjective(Objective):
    """A projector on the online side and a loss on the two views' projections, no target
    (SimCLR, VICReg); no multi-crop form."""

    head: type[MLPHead]

    def __init__(self, backbone: nn.Module, feature_dim: int, temperature: float | None = None,
                 hidden: int = 1024, out: int = 1024):
        super().__init__()
        self.projector = self.head(feature_dim, hidden, out)
        self.criterion = self.make_criterion(temperature)

    def make_criterion(self, temperature: float | None) -> nn.Module:  # pragma: no cover
        raise NotImplementedError

    def embed(self, features):
        return self.projector(features)

    def loss(self, e1, e2, x1, x2, local=()):
        if local:
            raise BadInput(f"{self.name} has no multi-crop form here; use --ssl byol or mocov3 "
                           "with --local-crops")
        return self.criterion(e1, e2)


class SimCLR(_ProjectorObjective):
    """SimCLR: projector + NT-Xent over the 2N views of a batch. Temperature 0.5 (SimCLR's
    CIFAR setting): at the batch sizes of one CPU or GPU it gave Fashion-MNIST features 3.5
    kNN points above 0.2 in equal-budget pilots (BENCHMARKS.md)."""

    name = "simclr"
    default_temperature = 0.5
    head = SimCLRProjectionHead

    def __init__(self, backbone: nn.Module, feature_dim: int, temperature: float | None = None,
                 hidden: int = 512, out: int = 128):
        super().__init__(backbone, feature_dim, temperature, hidden, out)

    def make_criterion(self, temperature):
        return NTXentLoss(temperature or self.default_temperature)


class VICReg(_ProjectorObjective):
    """VICReg: expander + variance-invariance-covariance loss on the two views' embeddings;
    no negatives, no momentum target, no predictor."""

    name = "vicreg"
    head = VICRegExpanderHead
    # SGD at 0.4 (0.1 at batch 64) lost 3.7 kNN points to 0.12 in pilots (BENCHMARKS.md)
    base_lr = {"sgd": 0.12}

    def make_criterion(self, temperature):
        return VICRegLoss()


class _MomentumObjective(Objective):
    """Projector + predictor on the online side; the loss compares each view's prediction with
    a momentum target's projection of the other view (BYOL, MoCo v3)."""

    momentum = 0.99
    multi_crop = True
    head: type[MLPHead]

    def __init__(self, backbone: nn.Module, feature_dim: int, temperature: float | None = None,
                 hidden: int = 1024, out: int = 256):
        super().__init__()
        self.projector = self.head(feature_dim, hidden, out)
        self.predictor = self.head(out, hidden, out)
        self.criterion = self.make_criterion(temperature)
        self.attach_target(backbone, self.projector)

    def make_criterion(self, temperature: float | None) -> nn.Module:  # pragma: no cover
        raise NotImplementedError

    def embed(self, features):
        return self.predictor(self.projector(features))

    def loss(self, e1, e2, x1, x2, local=()):
        return self.criterion(e1, e2, *self.target_embed(x1, x2), local)


class BYOL(_MomentumObjective):
    """BYOL: projector + predictor regress a momentum target's projection of the other view."""

    name = "byol"
    head = BYOLProjectionHead

    def make_criterion(self, temperature):
        return BYOLLoss()


class MoCoV3(_MomentumObjective):
    """MoCo v3: projector + predictor queries against momentum-encoder keys (InfoNCE)."""

    name = "mocov3"
    default_temperature = 0.2
    head = MoCoV3ProjectionHead

    def make_criterion(self, temperature):
        return MoCoV3Loss(temperature or self.default_temperature)


OBJECTIVES: dict[str, type[Objective]] = {o.name: o for o in (SimCLR, BYOL, MoCoV3, VICReg)}


def build_objective(name: str, backbone: nn.Module, feature_dim: int,
                    temperature: float | None = None,
                    momentum: float | None = None) -> Objective:
    """The objective called ``name`` for a backbone of ``feature_dim`` output features;
    ``momentum`` replaces the default starting EMA rate of a momentum target."""
    if name not in OBJECTIVES:
        raise BadInput(f"unknown --ssl {name!r}; known: {', '.join(OBJECTIVES)}")
    objective = OBJECTIVES[name](backbone, feature_dim, temperature)
    if momentum is not None:
        if objective.momentum is None:
            raise BadInput(f"--ssl {name} has no momentum target to set a momentum for")
        objective.momentum = momentum
    return objective


def distill_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """In-place distillation: ``2 - 2 cos`` of a subnet's embedding to the largest's
    (detached) embedding of the same views."""
    return cosine_regression(student, teacher.detach())
