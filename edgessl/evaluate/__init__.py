"""Evaluation of frozen backbones: BN re-estimation, features, kNN and linear probe.

>>> from edgessl.evaluate import evaluate_backbone, load_backbone
>>> net, info = load_backbone("RUN/last.ckpt", arch="smallest")
>>> evaluate_backbone(net, "digits", resolution=32)    # {"knn": ..., "linear": ...}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from edgessl.data import eval_loader, eval_split
from edgessl.errors import BadInput
from edgessl.evaluate.load import load_backbone
from edgessl.evaluate.metrics import (
    extract_features,
    knn_accuracy,
    linear_probe_accuracy,
    recalibrate_bn,
)

PROTOCOLS = ("knn", "linear", "both")
STAGES = ("batchnorm", "features", "probe")  # what evaluate_backbone's on_stage hears, in order


def evaluate_backbone(model: nn.Module, data: str, resolution: int, protocol: str = "both",
                      bank_size: int | None = None, test_size: int | None = None,
                      device: torch.device | str = "cpu", bn_images: int = 2000, k: int = 20,
                      temperature: float = 0.07, recalibrate: bool = True,
                      on_stage: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Accuracy of ``model``'s frozen features on the fixed labelled split of ``data``:
    BN statistics re-estimated on (up to ``bn_images``) bank images, then kNN and/or a
    linear probe trained on the bank and scored on the test split. ``on_stage`` hears
    progress (each of ``STAGES``)."""
    if protocol not in PROTOCOLS:
        raise BadInput(f"unknown --protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    bank, test = eval_split(data, bank_size, test_size)
    stage = on_stage or (lambda _: None)
    model = model.to(device)
    stage("batchnorm")
    if recalibrate:
        recalibrate_bn(model, eval_loader(bank.head(bn_images), resolution), device)
    stage("features")
    train_f, train_y = extract_features(model, eval_loader(bank, resolution), device)
    test_f, test_y = extract_features(model, eval_loader(test, resolution), device)
    out: dict[str, Any] = {"data": data, "resolution": resolution, "bank_size": len(bank),
                           "test_size": len(test), "feature_dim": int(train_f.shape[1])}
    stage("probe")
    if protocol in ("knn", "both"):
        out["knn"] = knn_accuracy(train_f, train_y, test_f, test_y, k, temperature)
    if protocol in ("linear", "both"):
        out["linear"] = linear_probe_accuracy(train_f, train_y, test_f, test_y)
    return out


__all__ = ["PROTOCOLS", "STAGES", "evaluate_backbone", "extract_features", "knn_accuracy",
           "linear_probe_accuracy", "load_backbone", "recalibrate_bn"]
