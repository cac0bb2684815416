"""Handcrafted torchvision networks usable by name wherever an Arch is accepted.

``build_baseline(name)`` gives a backbone (the ImageNet classifier replaced by ``Identity``, so
the output is the feature vector); ``num_classes=1000`` keeps torchvision's full network, on
which the published MFLOPs are counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torchvision
from torch import nn

from edgessl.errors import BadInput


@dataclass(frozen=True)
class Baseline:
    """A named torchvision network and its published MFLOPs at 224 (torchvision's docs)."""

    name: str
    factory: Callable[..., nn.Module]
    published_mflops: float
    feature_dim: int

    def build(self, num_classes: int = 0) -> nn.Module:
        model = self.factory(weights=None)
        if num_classes == 1000:
            return model
        head = (nn.Linear(self.feature_dim, num_classes) if num_classes else nn.Identity())
        if hasattr(model, "fc"):
            model.fc = head
        else:
            model.classifier[-1] = head
        model.feature_dim = self.feature_dim
        return model


BASELINES: dict[str, Baseline] = {b.name: b for b in (
    Baseline("resnet18", torchvision.models.resnet18, 1814.0, 512),
    Baseline("resnet50", torchvision.models.resnet50, 4089.0, 2048),
    Baseline("mobilenet_v2", torchvision.models.mobilenet_v2, 300.8, 1280),
    Baseline("mobilenet_v3_large", torchvision.models.mobilenet_v3_large, 216.6, 1280),
    Baseline("mobilenet_v3_small", torchvision.models.mobilenet_v3_small, 56.5, 1024),
)}


def get_baseline(name: str) -> Baseline:
    """The baseline called ``name`` (an optional ``baseline:`` prefix is accepted)."""
    key = name.removeprefix("baseline:")
    try:
        return BASELINES[key]
    except KeyError:
        raise BadInput(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}") from None


def is_baseline(name: str) -> bool:
    return name.removeprefix("baseline:") in BASELINES


def build_baseline(name: str, num_classes: int = 0) -> nn.Module:
    return get_baseline(name).build(num_classes)
