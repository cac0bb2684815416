"""Evaluation of frozen backbones: BN re-estimation, features, kNN and linear probe.

>>> from edgessl.evaluate import evaluate_backbone, load_backbone
>>> net, info = load_backbone("RUN/last.ckpt", arch="smallest")
>>> evaluate_backbone(net, "digits", resolution=32)    # {"knn": ..., "linear": ...}

Bank and test sets are bounded by default (``BANK_SIZE``, ``TEST_SIZE``: random samples of the
train and test splits, the totals stated in the result), features are extracted by
data-loader workers feeding the chosen device, and the linear probe runs on that device.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from edgessl.data import eval_loader
from edgessl.data.images import ImageSet
from edgessl.data.sources import labelled_splits
from edgessl.errors import BadInput
from edgessl.evaluate.metrics import (
    PROBES,
    extract_features,
    knn_accuracy,
    knn_vote_share,
    linear_probe_accuracy,
    recalibrate_bn,
)

PROTOCOLS = ("knn", "linear", "both")
STAGES = ("batchnorm", "features", "probe")  # what evaluate_backbone's on_stage hears, in order
BANK_SIZE = 10_000  # default labelled train images (kNN bank, probe training set)
TEST_SIZE = 10_000  # default test images
RESOLUTIONS = (8, 1024)  # what edgessl train accepts too
Stage = Callable[[str, int, int], None]  # (stage, done, total)


def load_backbone(path: str, arch: str = "largest", init_random: bool = False,
                  seed: int = 0) -> tuple[nn.Module, dict[str, Any]]:
    """(backbone, info) of any checkpoint: :func:`edgessl.checkpoint.load_network`."""
    from edgessl.checkpoint import load_network

    net = load_network(path, arch, init_random=init_random, seed=seed)
    return net.module, net.info()


def check_eval_options(resolution: int, bank_size: int | None, test_size: int | None, k: int,
                       protocol: str, probe: str = "auto", workers: int | None = None) -> None:
    """Refuse an evaluation that cannot work, naming the option (before anything loads)."""
    if protocol not in PROTOCOLS:
        raise BadInput(f"unknown --protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    if probe not in PROBES:
        raise BadInput(f"unknown --probe {probe!r}; known: {', '.join(PROBES)}")
    low, high = RESOLUTIONS
    if not low <= resolution <= high:
        raise BadInput(f"--resolution {resolution} must lie in {low}..{high}")
    for name, value in (("--bank-size", bank_size), ("--test-size", test_size), ("--k", k)):
        if value is not None and value < 1:
            raise BadInput(f"{name} {value} must be at least 1")
    if workers is not None and workers < 0:
        raise BadInput(f"--workers {workers} must be >= 0")


def default_workers(device: torch.device) -> int:
    """Loader workers for feature extraction: up to 8 beside a GPU, none on CPU (the model
    needs the cores there)."""
    return min(8, os.cpu_count() or 1) if device.type == "cuda" else 0


def _features(model: nn.Module, images: ImageSet, resolution: int, device: torch.device,
              workers: int, stage: Stage) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and labels of the readable images of ``images`` (unreadable ones dropped)."""
    loader = eval_loader(images, resolution, workers=workers,
                         pin_memory=device.type == "cuda")
    feats, labels = extract_features(model, loader, device,
                                     lambda done, total: stage("features", done, total))
    keep = images.readable()
    return feats[keep], labels[keep]


def evaluate_backbone(model: nn.Module, data: str, resolution: int, protocol: str = "both",
                      bank_size: int | None = BANK_SIZE, test_size: int | None = TEST_SIZE,
                      device: torch.device | str = "cpu", bn_images: int = 2000, k: int = 20,
                      temperature: float = 0.07, recalibrate: bool = True,
                      on_stage: Stage | None = None, val_data: str | None = None,
                      workers: int | None = None, probe: str = "auto") -> dict[str, Any]:
    """Accuracy of ``model``'s frozen features on the fixed labelled split of ``data`` (its
    test split, or the folder ``val_data``): BN statistics re-estimated on (up to
    ``bn_images``) bank images, then kNN and/or a linear probe (``probe``: auto, lbfgs, sgd)
    trained on the bank and scored on the test images. ``bank_size``/``test_size`` bound the
    sets (None: all); unreadable images are dropped and counted. ``on_stage`` hears
    (stage, done, total) for each of ``STAGES``."""
    check_eval_options(resolution, bank_size, test_size, k, protocol, probe, workers)
    device = torch.device(device)
    workers = default_workers(device) if workers is None else workers
    train, test = labelled_splits(data, val_data)
    bank, held = train.head(bank_size), test.head(test_size)
    stage = on_stage or (lambda *_: None)
    model = model.to(device)
    stage("batchnorm", 0, 1)
    if recalibrate:
        recalibrate_bn(model, eval_loader(bank.head(bn_images), resolution, workers=workers),
                       device)
    stage("features", 0, 1)
    train_f, train_y = _features(model, bank, resolution, device, workers, stage)
    test_f, test_y = _features(model, held, resolution, device, workers, stage)
    if not len(train_f) or not len(test_f):
        raise BadInput(f"data {data!r}: no readable {'bank' if not len(train_f) else 'test'} "
                       "images to evaluate on")
    out: dict[str, Any] = {
        "data": data, "val_data": val_data, "resolution": resolution,
        "bank_size": len(train_f), "bank_total": len(train), "test_size": len(test_f),
        "test_total": len(test), "feature_dim": int(train_f.shape[1]),
        "skipped_images": (train.skipped + test.skipped + bank.decode_failures
                           + held.decode_failures)}
    stage("probe", 0, 1)
    train_f, test_f = train_f.to(device), test_f.to(device)
    if protocol in ("knn", "both"):
        out["knn"] = knn_accuracy(train_f, train_y, test_f, test_y, k, temperature)
    if protocol in ("linear", "both"):
        out["linear"] = linear_probe_accuracy(
            train_f, train_y, test_f, test_y, method=probe, device=device,
            progress=lambda done, total: stage("probe", done, total))
    stage("probe", 1, 1)
    return out


__all__ = ["BANK_SIZE", "PROBES", "PROTOCOLS", "STAGES", "TEST_SIZE", "check_eval_options",
           "evaluate_backbone", "extract_features", "knn_accuracy", "knn_vote_share",
           "linear_probe_accuracy", "load_backbone", "recalibrate_bn"]
