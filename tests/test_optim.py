"""Optimizer recipes: linear LR scaling, per-objective base rates, no decay on norms."""

from __future__ import annotations

import pytest
from torch import nn

from edgessl.ssl.objectives import OBJECTIVES
from edgessl.train.optim import build_optimizer


def _model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


@pytest.mark.parametrize(("ssl", "optimizer", "expected"), [
    ("simclr", "sgd", 0.1), ("byol", "sgd", 0.1),  # 0.4 x 64 / 256
    ("vicreg", "sgd", 0.03),  # VICReg's own SGD rate, 0.12 x 64 / 256
    ("vicreg", "lars", 0.25), ("vicreg", "adamw", 2e-3),  # no VICReg entry: recipe default
])
def test_default_lr_follows_the_objective_and_the_batch(ssl, optimizer, expected):
    _, lr = build_optimizer(optimizer, _model(), 64, base_lr=OBJECTIVES[ssl].base_lr)
    assert lr == pytest.approx(expected)


def test_explicit_lr_wins_and_norm_parameters_get_no_decay():
    opt, lr = build_optimizer("sgd", _model(), 64, lr=0.5, base_lr=OBJECTIVES["vicreg"].base_lr)
    assert lr == 0.5 and all(g["lr"] == 0.5 for g in opt.param_groups)
    decay, no_decay = opt.param_groups
    assert [p.ndim for p in decay["params"]] == [4] and decay["weight_decay"] > 0
    assert len(no_decay["params"]) == 3 and no_decay["weight_decay"] == 0.0
