"""What ``export`` and ``bench`` take as SOURCE, resolved to a PyTorch module, and the real
images the parity check runs on.

A SOURCE is one of:
- a search result folder (``best.ckpt``, an ``edgessl-model/1`` checkpoint, next to
  ``best.arch.json``),
- a standalone checkpoint file (``edgessl-model/1``, see :mod:`edgessl.checkpoint`),
- an arch JSON file (random-init weights, seeded: enough for latency work),
- a baseline name (``resnet50``, ``mobilenet_v2``, ...; random-init weights).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgessl.arch import Arch
from edgessl.errors import BadInput
from edgessl.models import build_network

RESULT_CKPT, RESULT_ARCH = "best.ckpt", "best.arch.json"
BASELINE_RESOLUTION = 224
MIN_RESOLUTION = 32
CALIBRATION_IMAGES = 8
CALIBRATION_NOISE = 0.5


@dataclass
class Source:
    """A resolved SOURCE: the backbone in eval mode, what it is, where it came from."""

    module: nn.Module
    ref: Arch | str
    resolution: int
    origin: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.ref if isinstance(self.ref, str) else f"{self.ref.space}:{self.ref}"

    def describe(self) -> dict[str, Any]:
        """JSON-ready description for ``export.json``."""
        model = ({"kind": "arch", "arch": self.ref.to_dict()} if isinstance(self.ref, Arch)
                 else {"kind": "baseline", "name": self.ref})
        return {**self.origin, "model": model}


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_resolution(resolution: int) -> int:
    if resolution < MIN_RESOLUTION:
        raise BadInput(f"--resolution {resolution} is too small; use at least {MIN_RESOLUTION}")
    return resolution


def _from_checkpoint(path: Path) -> tuple[nn.Module, Arch | str]:
    from edgessl.checkpoint import MODEL_FORMAT, load_network

    net = load_network(path, formats=(MODEL_FORMAT,))  # BadInput names the file if foreign
    return net.module, net.ref


def _from_result(folder: Path) -> tuple[nn.Module, Arch | str, Path]:
    ckpt = folder / RESULT_CKPT
    if not ckpt.is_file():
        raise BadInput(f"folder {folder} is not an edgessl search result (no {RESULT_CKPT})")
    module, ref = _from_checkpoint(ckpt)
    arch_file = folder / RESULT_ARCH
    if isinstance(ref, Arch) and arch_file.is_file() and Arch.load(arch_file) != ref:
        raise BadInput(f"{arch_file} does not match the arch stored in {ckpt}")
    return module, ref, ckpt


def _from_arch(path: Path) -> tuple[nn.Module, Arch]:
    arch = Arch.load(path)
    torch.manual_seed(0)  # random init, but the same file always gives the same weights
    return build_network(arch).eval(), arch


def resolve_source(text: str, resolution: int | None = None) -> Source:
    """Turn a SOURCE string into a :class:`Source`; :class:`BadInput` names anything unusable.

    ``resolution`` defaults to the Arch's resolution (224 for baselines).
    """
    from edgessl.baselines import BASELINES, build_baseline, is_baseline

    path = Path(text)
    if path.is_dir():
        module, ref, ckpt = _from_result(path)
        origin = {"kind": "result", "path": str(path), "sha256": sha256_file(ckpt)}
    elif path.is_file():
        if path.suffix == ".onnx":
            raise BadInput(f"{text} is an ONNX file; export needs the network it came from "
                           "(a result folder, a .ckpt, an arch JSON or a baseline name)")
        if path.suffix == ".json":
            module, ref = _from_arch(path)
            origin = {"kind": "arch", "path": str(path), "weights": "random-init (seed 0)"}
        else:
            module, ref = _from_checkpoint(path)
            origin = {"kind": "checkpoint", "path": str(path)}
        origin["sha256"] = sha256_file(path)
    elif is_baseline(text):
        ref = text.removeprefix("baseline:")
        torch.manual_seed(0)
        module = build_baseline(ref).eval()
        origin = {"kind": "baseline", "weights": "random-init (seed 0)"}
    elif path.suffix or "/" in text or "\\" in text:
        raise BadInput(f"SOURCE not found: {text}")
    else:
        raise BadInput(f"unknown baseline {text!r} (and no such file); known: "
                       f"{', '.join(BASELINES)}")
    default = ref.resolution if isinstance(ref, Arch) else BASELINE_RESOLUTION
    res = _check_resolution(resolution if resolution is not None else default)
    if origin.get("weights", "").startswith("random-init"):
        calibrate_bn(module, res)
        origin["weights"] += (f", BatchNorm statistics from {CALIBRATION_IMAGES} digit images "
                              f"+ noise (std {CALIBRATION_NOISE})")
    return Source(module.eval(), ref, res, origin)


def calibrate_bn(module: nn.Module, resolution: int, n: int | None = None) -> nn.Module:
    """Set BatchNorm running statistics from ``n`` calibration images (cumulative average).

    Random-init networks in eval mode (running mean 0, variance 1) give outputs of ~1e-9 for
    MobileNet-style nets (fan-out init of depthwise convs shrinks every block), which would make
    any parity check pass vacuously; with calibrated statistics the features are O(1), as for
    a trained network. The calibration images are digits plus Gaussian noise (std 0.5): digits
    alone leave channels with almost no variance, whose huge BN gains make the network far
    more sensitive to rounding than a trained one. Weights are unchanged.
    """
    from edgessl.evaluate.metrics import recalibrate_bn

    n = n or CALIBRATION_IMAGES
    x = torch.from_numpy(sample_images(n, resolution, offset=1000))
    x = x + CALIBRATION_NOISE * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    return recalibrate_bn(module, [x])  # one batch: the cumulative average of n images


@cache
def _digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return (load_digits().images / 16.0).astype(np.float32)  # (1797, 8, 8) in [0, 1]


def sample_images(n: int, resolution: int, offset: int = 0) -> np.ndarray:
    """``n`` real images (sklearn's handwritten digits, shipped with scikit-learn: no download)
    upsampled to ``resolution``, 3 channels, ImageNet-normalised: float32 (n, 3, R, R)."""
    digits = _digits()
    idx = [(offset + i) % len(digits) for i in range(n)]
    x = torch.from_numpy(digits[idx]).unsqueeze(1)
    x = nn.functional.interpolate(x, size=(resolution, resolution), mode="bilinear",
                                  align_corners=False).repeat(1, 3, 1, 1)
    from edgessl.data.transforms import MEAN, STD  # ImageNet's, as training normalises

    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return ((x - mean) / std).numpy().astype(np.float32)
