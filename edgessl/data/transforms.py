"""Two-view SSL augmentation and the deterministic evaluation transform (torchvision v2).

Defaults follow SimCLR/BYOL (random resized crop, flip, colour jitter, grayscale, blur) but are
scaled to the image size: the blur kernel is about 10% of the crop side and its sigma shrinks
with it, so a 28x28 image upsampled to 32 px is blurred like a 224 px photo, not erased.

Two of torchvision's transforms are replaced, with the same parameters and random draws, by
faster computations of the same result on uint8 image tensors (BENCHMARKS.md,
data_throughput): the blur as two matrix products (the Gaussian is separable; torchvision
convolves with the full 2-D kernel), and the colour jitter by torchvision's own PIL kernels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def blur_params(resolution: int, native_size: int = 0) -> tuple[int, tuple[float, float]]:
    """(odd kernel size, sigma range) for a crop of ``resolution`` px from images of
    ``native_size`` px (0: unknown); SimCLR's 10% kernel and sigma (0.1, 2.0) at 224."""
    side = min(resolution, native_size) if native_size else resolution
    kernel = max(3, int(round(0.1 * side)) | 1)
    sigma_max = max(0.5, 2.0 * side / 224)
    return kernel, (0.1, sigma_max)


def _blur_matrix(n: int, kernel: int, sigma: float) -> torch.Tensor:
    """(n, n) matrix of a 1-D Gaussian blur with reflect padding (torchvision's kernel)."""
    half = (kernel - 1) * 0.5
    pdf = torch.exp(-0.5 * (torch.linspace(-half, half, kernel) / sigma) ** 2)
    src = (torch.arange(n)[:, None] + torch.arange(kernel)[None, :] - kernel // 2).abs()
    src = torch.where(src >= n, 2 * (n - 1) - src, src)
    return torch.zeros(n, n).scatter_add_(1, src, (pdf / pdf.sum()).expand(n, kernel).contiguous())


class GaussianBlur(v2.GaussianBlur):
    """torchvision's GaussianBlur; on a (C, H, W) tensor computed as ``My @ x @ Mx^T`` (6x
    faster at 224 px on one core, equal up to rounding)."""

    def transform(self, inpt, params):
        kx, ky = self.kernel_size
        if type(inpt) is not torch.Tensor or inpt.ndim != 3 or min(inpt.shape[1:]) <= max(
                kx, ky) // 2:
            return super().transform(inpt, params)
        sx, sy = params["sigma"]
        h, w = inpt.shape[1:]
        out = _blur_matrix(h, ky, sy) @ inpt.float() @ _blur_matrix(w, kx, sx).T
        return out if inpt.is_floating_point() else out.round_().to(inpt.dtype)


class ColorJitter(v2.ColorJitter):
    """torchvision's ColorJitter; a uint8 RGB tensor is jittered by torchvision's PIL kernels
    (one conversion each way: 1.2-1.6x faster than the float tensor path, which converts at
    every step; the same random factors, a few levels of rounding apart)."""

    def transform(self, inpt, params):
        if (type(inpt) is not torch.Tensor or inpt.ndim != 3 or inpt.dtype != torch.uint8
                or inpt.shape[0] != 3):
            return super().transform(inpt, params)
        pil = Image.fromarray(inpt.permute(1, 2, 0).numpy())
        return torch.from_numpy(np.array(super().transform(pil, params))).permute(2, 0, 1)


def ssl_augment(resolution: int, native_size: int = 0, min_scale: float = 0.2,
                jitter: float = 0.4, max_scale: float = 1.0,
                flip: bool = True) -> Callable[[torch.Tensor], torch.Tensor]:
    """One view: uint8 (3, H, W) -> normalised float (3, resolution, resolution), from a
    random crop of ``min_scale``..``max_scale`` of the image area; ``flip``: random
    horizontal flips (off for images a mirror changes, such as digits)."""
    kernel, sigma = blur_params(resolution, native_size)
    return v2.Compose([
        v2.RandomResizedCrop(resolution, scale=(min_scale, max_scale), antialias=True),
        v2.RandomHorizontalFlip(p=0.5 if flip else 0.0),
        v2.RandomApply([ColorJitter(jitter, jitter, jitter / 2, jitter / 4)], p=0.8),
        v2.RandomGrayscale(p=0.2),
        v2.RandomApply([GaussianBlur(kernel, sigma)], p=0.5),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(MEAN, STD),
    ])


def eval_transform(resolution: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Resize the short side, centre crop, normalise: uint8 (3, H, W) -> float."""
    return v2.Compose([
        v2.Resize(resolution, antialias=True),
        v2.CenterCrop(resolution),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(MEAN, STD),
    ])


LOCAL_MIN_SCALE = 0.05  # DINO's local crops: 0.05..0.4 of the area, globals 0.4..1


def local_resolution(resolution: int) -> int:
    """Side of the small local crops for global views of ``resolution`` px: DINO's 96/224,
    rounded to a multiple of 8 (48 -> 24, 224 -> 96), at least 16."""
    return max(16, 8 * round(resolution * 96 / 224 / 8))


class TwoViews:
    """Two global views (one transform per view, the same one twice by default), then
    ``n_local`` small local views (multi-crop, as in SwAV and DINO) when ``local`` is given."""

    def __init__(self, first: Callable, second: Callable | None = None,
                 local: Callable | None = None, n_local: int = 0):
        self.first, self.second = first, second or first
        self.local, self.n_local = local, n_local if local is not None else 0

    def __call__(self, img: torch.Tensor) -> tuple[torch.Tensor, ...]:
        views = [self.first(img), self.second(img)]
        views += [self.local(img) for _ in range(self.n_local)]
        return tuple(views)
