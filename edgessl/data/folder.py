"""Image folders as data sets, in the layouts vision libraries use.

- **Split layout** (ImageNet, torchvision, timm): ``DATA/train/`` and ``DATA/val/`` (or
  ``DATA/test/``) are one data set with those splits: the train split is ``train/`` only, the
  test split ``val/``. ``DATA/train/<class>/*.jpg`` + ``DATA/val/<class>/*.jpg`` is labelled;
  ``val/`` classes must be among ``train/``'s.
- **Labelled folder**: ``DATA/<class>/*.jpg`` (two or more class sub-folders, every image
  one level down), split 80/20 by a fixed seed.
- **Anything else**: a recursive set of unlabelled images, split 80/20 the same way.

``val_data`` names a validation folder explicitly, for any layout: ``DATA`` (or
``DATA/train``) is then wholly the train split and ``val_data`` the test split. Every split
is a fixed, seeded permutation, so the first N images of a split are a random sample of it.
Files known unreadable at indexing are left out and counted in ``ImageSet.skipped``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgessl.data.images import ImageSet, PathList, seeded_split
from edgessl.data.index import FolderIndex, open_index
from edgessl.errors import BadInput

VAL_NAMES = ("val", "test")  # the validation folder of a split layout, in order of preference
SPLIT_SEED = 0
log = logging.getLogger("edgessl.data")


@dataclass(frozen=True)
class Layout:
    """Where a folder source's splits come from: ``val`` None means a seeded 80/20 split of
    ``train``."""

    train: Path
    val: Path | None


def split_layout(root: Path) -> Layout | None:
    """``root/train`` + ``root/val`` (or ``root/test``) when ``root`` is laid out so."""
    if not (root / "train").is_dir():
        return None
    for name in VAL_NAMES:
        if (root / name).is_dir():
            return Layout(root / "train", root / name)
    return None


def folder_layout(source: str, val_data: str | None = None) -> Layout:
    """The layout of folder ``source``, with ``val_data`` (a folder) as its test split."""
    root = Path(source)
    found = split_layout(root) if root.is_dir() else None
    train = found.train if found else root
    if val_data is not None:
        val = Path(val_data)
        if not val.is_dir():
            raise BadInput(f"--val-data {val_data} is not a folder" if val.exists()
                           else f"--val-data folder not found: {val_data}")
        return Layout(train, val)
    return Layout(train, found.val if found else None)


def _image_set(index: FolderIndex, name: str, classes: list[str] | None = None) -> ImageSet:
    """The readable images of ``index``; with ``classes`` (the train split's), labels are
    mapped to those names, and a class the train split lacks is refused."""
    files, labels, names = index.files, index.labels, index.classes
    if len(index.bad):
        log.warning("skipped %d unreadable images in %s", len(index.bad), index.root)
        keep = np.ones(len(index), dtype=bool)
        keep[index.bad] = False
        keep = np.flatnonzero(keep)
        files, labels = files.take(keep), labels[keep] if labels is not None else None
    if labels is not None and classes is not None:
        position = {c: i for i, c in enumerate(classes)}
        unknown = [c for c in names if c not in position]
        if unknown:
            raise BadInput(f"validation folder {index.root} has class {unknown[0]!r}, which "
                           f"the training folder lacks (it has {', '.join(classes[:5])}...)")
        labels = np.array([position[c] for c in names], dtype=np.int64)[labels]
        names = classes
    return ImageSet(name, paths=files, labels=labels, classes=list(names),
                    skipped=len(index.bad))


def _permuted(images: ImageSet) -> ImageSet:
    return images.subset(np.random.default_rng(SPLIT_SEED).permutation(len(images)))


def _concat(parts: list[ImageSet], name: str) -> ImageSet:
    labelled = all(p.labelled for p in parts)
    return ImageSet(name, paths=PathList.concat([p.paths for p in parts]),
                    labels=np.concatenate([p.labels for p in parts]) if labelled else None,
                    classes=parts[0].classes if labelled else [],
                    skipped=sum(p.skipped for p in parts))


def open_folder(source: str, split: str = "all", val_data: str | None = None,
                classes: list[str] | None = None) -> ImageSet:
    """The images of folder ``source`` in ``split`` (train/test/all): see the module text.
    ``classes`` maps a validation folder's labels onto a built-in set's class names."""
    lay = folder_layout(source, val_data)
    if lay.val is None:
        full = _image_set(open_index(lay.train), source)
        return full.subset(seeded_split(len(full), split, SPLIT_SEED))
    train = None
    if split in ("train", "all") or classes is None:
        train = _image_set(open_index(lay.train), source)
        classes = classes if classes is not None else (train.classes if train.labelled else None)
    test = None
    if split in ("test", "all"):
        test = _image_set(open_index(lay.val), str(lay.val), classes)
    if split == "train":
        return _permuted(train)
    if split == "test":
        return _permuted(test)
    return _concat([train, test], source)


def open_validation(val_data: str, classes: list[str] | None) -> ImageSet:
    """The test split from an explicit validation folder, labels mapped to ``classes``."""
    return _permuted(_image_set(open_index(Path(val_data)), val_data, classes))
