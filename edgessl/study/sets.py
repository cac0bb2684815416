"""Labelled evaluation sets prepared once, and the accuracy of a frozen network on one of them.

A study evaluates hundreds of networks on the same few sets, so each set's bank (the first
``bank`` images of its train split) and test images (the first ``test`` of its test split:
the fixed splits of :func:`edgessl.data.eval_split`) are decoded and resized once, kept as
tensors, and every network is scored on them with edgessl.evaluate's functions: BatchNorm
re-estimated on the bank, then kNN and/or the linear probe trained on the bank and scored on
the test images (the protocol of ``edgessl eval``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgessl.data import BUILTINS, eval_loader, eval_split
from edgessl.errors import BadInput
from edgessl.evaluate import (
    PROTOCOLS,
    extract_features,
    knn_accuracy,
    linear_probe_accuracy,
    recalibrate_bn,
)

BATCH = 256


@dataclass
class EvalSet:
    """One labelled set's bank and test images as tensors at one resolution."""

    source: str  # what the user gave (a built-in name or a folder)
    key: str  # its identity: the built-in name or the folder's resolved path
    label: str  # a short unique name for tables and plots
    bank_x: torch.Tensor
    bank_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    bank_total: int  # images in the whole train / test split
    test_total: int
    classes: int

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "label": self.label, "bank": len(self.bank_x),
                "test": len(self.test_x), "bank_total": self.bank_total,
                "test_total": self.test_total, "classes": self.classes}


def set_key(source: str) -> str:
    """A set's identity: built-ins by name, folders by resolved path (so ``./a`` is ``a``)."""
    return source if source in BUILTINS else str(Path(source).resolve())


def check_distinct(sources: list[str], option: str) -> None:
    """Refuse a set named twice (also through another spelling of the same folder)."""
    seen: dict[str, str] = {}
    for s in sources:
        key = set_key(s)
        if key in seen:
            same = "" if seen[key] == s else f" (as {seen[key]!r})"
            raise BadInput(f"{option} lists {s!r} twice{same}")
        seen[key] = s


def set_labels(sources: list[str]) -> list[str]:
    """Built-in names, folder names; the path as given where two folders share a name."""
    short = [s if s in BUILTINS else Path(s).resolve().name or s for s in sources]
    return [lab if short.count(lab) == 1 else s for lab, s in zip(short, sources, strict=True)]


def _tensors(images, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for x, y in eval_loader(images, resolution, batch_size=BATCH):
        xs.append(x)
        ys.append(torch.as_tensor(y))
    keep = images.readable()  # images found unreadable while decoding are dropped
    return torch.cat(xs)[keep], torch.cat(ys)[keep]


def prepare_sets(sources: list[str], resolution: int, bank: int | None, test: int | None,
                 option: str = "--downstream") -> list[EvalSet]:
    """An :class:`EvalSet` per source (distinct, labelled: else :class:`BadInput` naming it)."""
    check_distinct(sources, option)
    out = []
    for source, label in zip(sources, set_labels(sources), strict=True):
        try:
            train, held = eval_split(source)  # the whole splits, labels checked
        except BadInput as exc:
            raise BadInput(f"{option} {source}: {exc}") from None
        bx, by = _tensors(train.head(bank), resolution)
        tx, ty = _tensors(held.head(test), resolution)
        if not len(bx) or not len(tx):
            raise BadInput(f"{option} {source}: no readable "
                           f"{'bank' if not len(bx) else 'test'} images")
        out.append(EvalSet(source, set_key(source), label, bx, by, tx, ty, len(train),
                           len(held), len(train.classes)))
    return out


def check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise BadInput(f"unknown --protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")


def metrics_of(protocol: str) -> tuple[str, ...]:
    """The accuracies a protocol gives: ("knn",), ("linear",) or both."""
    return ("knn", "linear") if protocol == "both" else (protocol,)


def _features(net: nn.Module, x: torch.Tensor, y: torch.Tensor,
              device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return extract_features(net, zip(x.split(BATCH), y.split(BATCH), strict=True), device)


def evaluate_on(net: nn.Module, s: EvalSet, device: torch.device | str = "cpu",
                protocol: str = "both", k: int = 20, temperature: float = 0.07,
                bn_images: int = 500, probe_iters: int = 300) -> dict[str, Any]:
    """Accuracy of ``net``'s frozen features on ``s``: BN statistics re-estimated on the
    first ``bn_images`` bank images (the network's own are replaced), then kNN and/or the
    linear probe (``probe_iters`` L-BFGS iterations) fitted on the bank, scored on the test
    images. Returns {"knn": ..., "linear": ...} as the protocol asks, with kNN also
    ``knn_halves``: its accuracy on the even- and the odd-numbered test images (how much of
    a ranking the test images' sampling alone decides: the study's noise ceiling)."""
    device = torch.device(device)
    net = net.to(device)
    recalibrate_bn(net, s.bank_x[:bn_images].split(BATCH), device)
    bank_f, bank_y = _features(net, s.bank_x, s.bank_y, device)
    test_f, test_y = _features(net, s.test_x, s.test_y, device)
    out: dict[str, Any] = {}
    if protocol in ("knn", "both"):
        bank_d, test_d = bank_f.to(device), test_f.to(device)
        out["knn"] = knn_accuracy(bank_d, bank_y, test_d, test_y, k, temperature)
        out["knn_halves"] = [knn_accuracy(bank_d, bank_y, test_d[h::2], test_y[h::2], k,
                                          temperature) for h in (0, 1)]
    if protocol in ("linear", "both"):
        out["linear"] = linear_probe_accuracy(bank_f, bank_y, test_f, test_y,
                                              max_iter=probe_iters, method="auto",
                                              device=device)
    return out
