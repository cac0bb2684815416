"""Image sources: built-in data sets (``digits``, ``fashion-mnist``) and image folders.

``open_dataset(source, split)`` is the one way in; it returns an :class:`ImageSet` of uint8 RGB
images and, where the source has them, labels (kept for evaluation only). Splits are fixed and
seeded, so every command sees the same held-out images:

- ``digits``: scikit-learn's 1,797 8x8 digits; a seeded 80/20 train/test split.
- ``fashion-mnist``: torchvision's FashionMNIST (60,000 train / 10,000 test, 28x28), read from
  Debian's ``dataset-fashion-mnist`` files or downloaded where there is internet.
- a folder: ImageFolder layout (one sub-folder per class) is labelled; any other layout is a
  recursive set of unlabelled jpg/png/webp/bmp files. A seeded 80/20 split; corrupt images
  are skipped and counted.
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from edgessl.errors import BadInput
from edgessl.utils import atomic_write

SPLITS = ("train", "test", "all")
SPLIT_SEED = 0
TEST_FRACTION = 0.2
FASHION_DIRS = (Path("/usr/share/datasets/fashion-mnist"),)


@dataclass
class ImageSet:
    """A list of images (in memory for built-ins, paths for folders) with optional labels."""

    name: str
    images: torch.Tensor | None = None  # (N, C, H, W) uint8, C in {1, 3}
    paths: list[Path] | None = None
    labels: np.ndarray | None = None
    classes: list[str] = field(default_factory=list)
    skipped: int = 0
    native_size: int = 0  # typical side length in pixels (0: varies)

    def __len__(self) -> int:
        return len(self.images) if self.images is not None else len(self.paths or [])

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    def image(self, i: int) -> torch.Tensor:
        """Image ``i`` as a (3, H, W) uint8 tensor."""
        if self.images is not None:
            img = self.images[i]
        else:
            from edgessl.data.folder import read_image

            img = read_image(self.paths[i])
        return img.expand(3, -1, -1) if img.shape[0] == 1 else img

    def subset(self, indices) -> ImageSet:
        """The images at ``indices`` (a new ImageSet sharing storage)."""
        idx = np.asarray(indices, dtype=np.int64)
        return ImageSet(
            self.name,
            images=self.images[torch.from_numpy(idx)] if self.images is not None else None,
            paths=[self.paths[i] for i in idx] if self.paths is not None else None,
            labels=self.labels[idx] if self.labels is not None else None,
            classes=self.classes, skipped=self.skipped, native_size=self.native_size)

    def head(self, n: int | None) -> ImageSet:
        """The first ``n`` images (all when ``n`` is None or larger than the set)."""
        return self if n is None or n >= len(self) else self.subset(np.arange(n))


def seeded_split(n: int, split: str, seed: int = SPLIT_SEED,
                 test_fraction: float = TEST_FRACTION) -> np.ndarray:
    """Indices of ``split`` in a fixed, seeded permutation of ``n`` items."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(n * test_fraction))) if n > 1 else 0
    return {"test": perm[:n_test], "train": perm[n_test:], "all": perm}[split]


def _digits(split: str) -> ImageSet:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.from_numpy((d.images * (255.0 / 16.0)).round().astype(np.uint8))[:, None]
    full = ImageSet("digits", images=images, labels=d.target.astype(np.int64),
                    classes=[str(c) for c in range(10)], native_size=8)
    return full.subset(seeded_split(len(full), split))


def cache_dir() -> Path:
    """Where edgessl keeps derived data (``$EDGESSL_CACHE``, default ``~/.cache/edgessl``)."""
    return Path(os.environ.get("EDGESSL_CACHE", Path.home() / ".cache" / "edgessl"))


def _fashion_root() -> tuple[Path, bool]:
    """A torchvision root holding FashionMNIST/raw, filled from Debian's files when present."""
    root = cache_dir()
    raw = root / "FashionMNIST" / "raw"
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    if all((raw / n).is_file() for n in names):
        return root, False
    for src in FASHION_DIRS:
        if all((src / f"{n}.gz").is_file() for n in names):
            for n in names:
                def unzip(tmp: Path, n: str = n, src: Path = src) -> None:
                    with gzip.open(src / f"{n}.gz", "rb") as fin, open(tmp, "wb") as fout:
                        shutil.copyfileobj(fin, fout)
                atomic_write(raw / n, unzip)
            return root, False
    return root, True


def _fashion(split: str) -> ImageSet:
    from torchvision.datasets import FashionMNIST

    root, download = _fashion_root()
    parts = []
    for train in ({"train": (True,), "test": (False,), "all": (True, False)}[split]):
        try:
            parts.append(FashionMNIST(str(root), train=train, download=download))
        except (RuntimeError, OSError) as exc:
            raise BadInput(f"fashion-mnist files not found ({str(exc).splitlines()[0][:80]}); "
                           "install Debian's dataset-fashion-mnist or allow a download") from None
    images = torch.cat([p.data for p in parts])[:, None]
    labels = torch.cat([p.targets for p in parts]).numpy().astype(np.int64)
    return ImageSet("fashion-mnist", images=images, labels=labels,
                    classes=list(parts[0].classes), native_size=28)


def _fashion_sample(split: str) -> ImageSet:
    from edgessl.data.fm_sample import load

    return load(split)


BUILTINS: dict[str, Callable[[str], ImageSet]] = {
    "digits": _digits,
    "fashion-mnist": _fashion,
    "fashion-mnist-sample": _fashion_sample,
}


def open_dataset(source: str, split: str = "train") -> ImageSet:
    """The images of ``source`` (a built-in name or a folder) in ``split`` (train/test/all)."""
    if split not in SPLITS:
        raise BadInput(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    if source in BUILTINS:
        return BUILTINS[source](split)
    from edgessl.data.folder import open_folder

    full = open_folder(source)
    return full.subset(seeded_split(len(full), split))


def eval_split(source: str, bank_size: int | None = None,
               test_size: int | None = None) -> tuple[ImageSet, ImageSet]:
    """Fixed labelled (bank, test) sets for kNN / linear evaluation: the first ``bank_size``
    images of the train split and the first ``test_size`` of the test split."""
    train, test = open_dataset(source, "train"), open_dataset(source, "test")
    if not train.labelled:
        raise BadInput(f"data {source!r} has no labels (use an ImageFolder layout: one "
                       "sub-folder per class) so it cannot be evaluated")
    return train.head(bank_size), test.head(test_size)
