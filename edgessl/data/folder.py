"""Image folders: labelled (ImageFolder: one sub-folder per class) or a recursive, unlabelled
collection of jpg/png/webp/bmp files. Unreadable files are skipped and counted."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from edgessl.data.sources import ImageSet
from edgessl.errors import BadInput

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
log = logging.getLogger("edgessl.data")


def read_image(path: Path) -> torch.Tensor:
    """A file as a (3, H, W) uint8 tensor; an image that fails late decodes as black."""
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError):
        log.warning("image %s could not be decoded; using a blank image", path)
        return torch.zeros(3, 32, 32, dtype=torch.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def _readable(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            im.verify()
        return True
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return False


def open_folder(source: str) -> ImageSet:
    """Scan ``source``; refuse a missing path or a folder without one readable image."""
    root = Path(source)
    if not root.exists():
        raise BadInput(f"data path not found: {source} (or use a built-in: digits, "
                       "fashion-mnist)")
    if not root.is_dir():
        raise BadInput(f"data path {source} is not a folder")
    files = sorted(p for p in root.rglob("*")
                   if p.suffix.lower() in EXTENSIONS and p.is_file())
    if not files:
        raise BadInput(f"data folder {source} holds no images ({', '.join(EXTENSIONS)})")
    good = [p for p in files if _readable(p)]
    skipped = len(files) - len(good)
    if skipped:
        log.warning("skipped %d corrupt or unreadable images in %s", skipped, source)
    if not good:
        raise BadInput(f"data folder {source} holds no readable images "
                       f"({skipped} corrupt skipped)")
    parents = {p.parent for p in good}
    labelled = all(p.parent.parent == root for p in good) and len(parents) >= 2
    labels, classes = None, []
    if labelled:
        classes = sorted(p.name for p in parents)
        index = {c: i for i, c in enumerate(classes)}
        labels = np.array([index[p.parent.name] for p in good], dtype=np.int64)
    return ImageSet(str(source), paths=good, labels=labels, classes=classes, skipped=skipped)
