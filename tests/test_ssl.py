"""SSL losses against small reference implementations; heads; registry; momentum target."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from edgessl.errors import BadInput
from edgessl.ssl import (
    OBJECTIVES,
    BYOLLoss,
    ElasticLinear,
    MoCoV3Loss,
    NTXentLoss,
    VICRegLoss,
    build_objective,
    distill_loss,
)


def _ntxent_reference(z1, z2, t):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n, total = len(z1), 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        sims = [math.exp(float(z[i] @ z[m]) / t) for m in range(2 * n) if m != i]
        total += -math.log(math.exp(float(z[i] @ z[j]) / t) / sum(sims))
    return total / (2 * n)


def test_ntxent_matches_reference():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    assert NTXentLoss(0.3)(z1, z2).item() == pytest.approx(_ntxent_reference(z1, z2, 0.3),
                                                           rel=1e-5)


def test_byol_loss_and_distill_bounds():
    x = torch.randn(6, 4)
    assert BYOLLoss()(x, x, x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert BYOLLoss()(x, x, -x, -x).item() == pytest.approx(4.0, abs=1e-5)
    teacher = torch.randn(6, 4, requires_grad=True)
    distill_loss(torch.randn(6, 4, requires_grad=True), teacher).backward()
    assert teacher.grad is None  # the teacher is a constant


def test_local_crops_add_pairs_against_both_global_targets():
    """Multi-crop: each local prediction is scored against both global targets; BYOL takes the
    mean over all pairs, MoCo v3 twice that mean (its usual two-term sum without locals)."""
    g = torch.Generator().manual_seed(2)
    p1, p2, t1, t2, l1, l2 = (torch.randn(5, 4, generator=g) for _ in range(6))
    c = lambda p, t: 2 - 2 * F.cosine_similarity(p, t).mean()  # noqa: E731
    pairs = [c(p1, t2), c(p2, t1), c(l1, t1), c(l1, t2), c(l2, t1), c(l2, t2)]
    assert BYOLLoss()(p1, p2, t1, t2, [l1, l2]).item() == pytest.approx(
        float(sum(pairs)) / 6, rel=1e-5)
    assert BYOLLoss()(p1, p2, t1, t2, [l1, l2]).item() != pytest.approx(
        BYOLLoss()(p1, p2, t1, t2).item(), rel=1e-3)
    moco = MoCoV3Loss(0.2)
    with_locals = moco(p1, p2, t1, t2, [l1])
    parts = [moco._one(p1, t2), moco._one(p2, t1), moco._one(l1, t1), moco._one(l1, t2)]
    assert with_locals.item() == pytest.approx(2 * float(sum(parts)) / 4, rel=1e-5)


def test_simclr_refuses_local_crops():
    backbone = torch.nn.Linear(12, 16)
    obj = build_objective("simclr", backbone, 16)
    e = obj.embed(torch.randn(4, 16))
    with pytest.raises(BadInput, match="local-crops"):
        obj.loss(e, e, None, None, [e])


def test_mocov3_matches_reference():
    g = torch.Generator().manual_seed(1)
    q1, q2, k1, k2 = (torch.randn(4, 3, generator=g) for _ in range(4))
    t = 0.2

    def ref(q, k):
        q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
        return F.cross_entropy(q @ k.t() / t, torch.arange(4)).item() * 2 * t

    assert MoCoV3Loss(t)(q1, q2, k1, k2).item() == pytest.approx(ref(q1, k2) + ref(q2, k1),
                                                                 rel=1e-5)


def test_vicreg_matches_reference_and_punishes_collapse():
    g = torch.Generator().manual_seed(3)
    z1, z2 = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)

    def var(z):
        return sum(max(0.0, 1 - math.sqrt(float(z[:, j].var()) + 1e-4)) for j in range(4)) / 4

    def cov(z):
        c = torch.cov(z.t())
        return sum(float(c[i, j]) ** 2 for i in range(4) for j in range(4) if i != j) / 4

    ref = (25 * float(((z1 - z2) ** 2).mean()) + 25 * (var(z1) + var(z2)) / 2
           + cov(z1) + cov(z2))
    assert VICRegLoss()(z1, z2).item() == pytest.approx(ref, rel=1e-5)
    same = torch.ones(6, 4)  # collapsed: invariant and decorrelated, but no variance
    assert VICRegLoss()(same, same).item() == pytest.approx(25 * (1 - 0.01), rel=1e-5)


def test_elastic_linear_uses_leading_columns():
    lin = ElasticLinear(8, 3)
    x = torch.randn(2, 5)
    assert torch.allclose(lin(x), x @ lin.weight[:, :5].t() + lin.bias)


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_objectives_give_finite_loss_and_embedding(name):
    backbone = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 16))
    obj = build_objective(name, backbone, 16)
    x1, x2 = torch.randn(4, 12), torch.randn(4, 12)
    e1, e2 = obj.embed(backbone(x1)), obj.embed(backbone(x2))
    loss = obj.loss(e1, e2, x1, x2)
    assert torch.isfinite(loss) and loss.requires_grad
    if obj.momentum is not None:
        before = obj.target[0][1].weight.clone()
        with torch.no_grad():
            backbone[1].weight.add_(1.0)
        obj.update_target(backbone, obj.projector, progress=0.0)
        moved = obj.target[0][1].weight - before
        assert torch.allclose(moved, torch.full_like(moved, 1 - obj.momentum), atol=1e-5)


def test_target_momentum_can_be_set_for_momentum_objectives_only():
    backbone = torch.nn.Linear(12, 16)
    obj = build_objective("byol", backbone, 16, momentum=0.5)
    before = obj.target[0].weight.clone()
    with torch.no_grad():
        backbone.weight.add_(1.0)
    obj.update_target(backbone, obj.projector, progress=0.0)
    assert torch.allclose(obj.target[0].weight - before, torch.full_like(before, 0.5))
    with pytest.raises(BadInput, match="simclr"):
        build_objective("simclr", backbone, 16, momentum=0.5)


def test_unknown_objective_is_bad_input():
    with pytest.raises(BadInput, match="'swav'"):
        build_objective("swav", torch.nn.Identity(), 4)
