"""MFLOPs = millions of conv + linear multiply-accumulates (torchvision's "GFLOPS" convention).

Archs are costed analytically from their layout (microseconds, no network built), and so are
the handcrafted family members (``edgessl.baselines``); the five registered baselines are
counted once with forward hooks on the built torchvision network.
fvcore's FlopCountAnalysis restricted to conv and linear is the reference both must equal.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from functools import cache

import torch
from torch import nn

from edgessl.arch import Arch
from edgessl.baselines import get_baseline
from edgessl.errors import BadInput
from edgessl.spaces import get_space


@dataclass(frozen=True)
class ModelCost:
    """What ``edgessl cost`` reports for one model (MACs include a 1000-class classifier)."""

    name: str
    resolution: int
    mflops: float
    params: int
    feature_dim: int

    def to_dict(self) -> dict:
        return asdict(self)


def count_macs(model: nn.Module, resolution: int, channels: int = 3) -> int:
    """Conv + linear MACs of one forward pass at batch 1, counted with forward hooks."""
    total = 0

    def conv_hook(m: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += out[0].numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, inp, out: torch.Tensor) -> None:
        nonlocal total
        total += out[0].numel() * m.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, channels, resolution, resolution))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total


def fvcore_macs(model: nn.Module, resolution: int) -> int:
    """Reference count: fvcore's FlopCountAnalysis restricted to conv and linear ops."""
    try:
        with warnings.catch_warnings():  # fvcore scripts helpers with the deprecated torch.jit
            warnings.simplefilter("ignore")
            from fvcore.nn import FlopCountAnalysis
    except ImportError:  # pragma: no cover - fvcore is a dev extra
        raise BadInput("--exact needs fvcore: pip install 'edgessl[dev]'") from None
    analysis = FlopCountAnalysis(model.eval(), torch.zeros(1, 3, resolution, resolution))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with warnings.catch_warnings():  # fvcore traces with torch.jit, deprecated in torch 2.10+
        warnings.simplefilter("ignore")
        ops = analysis.by_operator()
    return int(sum(ops.get(k, 0) for k in ("conv", "linear", "addmm", "matmul")))


@cache
def _baseline_cost(name: str, resolution: int) -> tuple[int, int]:
    b = get_baseline(name)
    counted = b.analytic_cost(resolution)  # family members: exact, without building
    if counted is not None:
        return counted
    model = b.build(num_classes=1000)
    return count_macs(model, resolution), sum(p.numel() for p in model.parameters())


def model_cost(model: Arch | str, resolution: int | None = None) -> ModelCost:
    """Cost of an Arch (analytic) or a baseline name (counted; default resolution 224)."""
    if isinstance(model, Arch):
        space = get_space(model.space)
        if resolution is not None and resolution != model.resolution:
            model = model.replace(resolution=resolution)
        macs, params = space.cost(model)
        return ModelCost(str(model), model.resolution, macs / 1e6, params,
                         space.feature_dim(model))
    b = get_baseline(model)
    res = 224 if resolution is None else resolution
    if res < 32:
        raise BadInput(f"resolution {res} too small for {b.name}; use at least 32")
    macs, params = _baseline_cost(b.name, res)
    return ModelCost(b.name, res, macs / 1e6, params, b.feature_dim)


def build_reference_network(model: Arch | str) -> tuple[nn.Module, int]:
    """The full network (with 1000-class classifier) on which fvcore is run, and its resolution."""
    if isinstance(model, Arch):
        from edgessl.models import build_network

        return build_network(model, num_classes=1000), model.resolution
    return get_baseline(model).build(num_classes=1000), 224
