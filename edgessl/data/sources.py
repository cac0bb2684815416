"""Image sources: built-in data sets (``digits``, ``fashion-mnist``) and image folders.

``open_dataset(source, split)`` is the one way in; it returns an :class:`ImageSet` of uint8 RGB
images and, where the source has them, labels (kept for evaluation only). Splits are fixed and
seeded, so every command sees the same held-out images:

- ``digits``: scikit-learn's 1,797 8x8 digits; a seeded 80/20 train/test split.
- ``fashion-mnist``: torchvision's FashionMNIST (60,000 train / 10,000 test, 28x28), read from
  Debian's ``dataset-fashion-mnist`` files or downloaded where there is internet.
- a folder (:mod:`edgessl.data.folder`): ``train/`` + ``val/`` (or ``test/``) sub-folders are
  the splits; otherwise an ImageFolder layout (one sub-folder per class) is labelled, any
  other a recursive set of unlabelled jpg/png/webp/bmp files, split 80/20 by a fixed seed.
  ``val_data`` names a validation folder explicitly. Folders are indexed once (cached);
  corrupt images are skipped and counted.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from edgessl.data.folder import open_folder, open_validation
from edgessl.data.images import ImageSet, seeded_split
from edgessl.errors import BadInput
from edgessl.utils import atomic_write, cache_dir

SPLITS = ("train", "test", "all")
FASHION_DIRS = (Path("/usr/share/datasets/fashion-mnist"),)


def _digits(split: str) -> ImageSet:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.from_numpy((d.images * (255.0 / 16.0)).round().astype(np.uint8))[:, None]
    full = ImageSet("digits", images=images, labels=d.target.astype(np.int64),
                    classes=[str(c) for c in range(10)], native_size=8, mirror_safe=False)
    return full.subset(seeded_split(len(full), split))


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


def open_dataset(source: str, split: str = "train", val_data: str | None = None) -> ImageSet:
    """The images of ``source`` (a built-in name or a folder) in ``split`` (train/test/all);
    ``val_data`` (a folder) is the test split, and ``source`` then wholly the train split."""
    if split not in SPLITS:
        raise BadInput(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    if source not in BUILTINS:
        return open_folder(source, split, val_data)
    if val_data is None:
        return BUILTINS[source](split)
    if split == "train":
        return BUILTINS[source]("all")
    if split == "test":
        return open_validation(val_data, BUILTINS[source]("all").classes)
    raise BadInput(f"--data {source} with --val-data {val_data}: a built-in set and a "
                   "folder have no common 'all' split")


def labelled_splits(source: str, val_data: str | None = None) -> tuple[ImageSet, ImageSet]:
    """The whole (train, test) splits of ``source``, refused in one line unless both are
    labelled (what evaluation needs)."""
    train = open_dataset(source, "train", val_data)
    if not train.labelled:
        raise BadInput(f"data {source!r} has no labels (use an ImageFolder layout: one "
                       "sub-folder per class) so it cannot be evaluated")
    test = open_dataset(source, "test", val_data)
    if not test.labelled:
        raise BadInput(f"the validation images of {val_data or source!r} have no labels (put "
                       "them in class sub-folders named as in the training folder)")
    return train, test


def eval_split(source: str, bank_size: int | None = None, test_size: int | None = None,
               val_data: str | None = None) -> tuple[ImageSet, ImageSet]:
    """Fixed labelled (bank, test) sets for kNN / linear evaluation: the first ``bank_size``
    images of the train split and the first ``test_size`` of the test split."""
    train, test = labelled_splits(source, val_data)
    return train.head(bank_size), test.head(test_size)
