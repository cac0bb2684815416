"""A labelled image folder the Fashion-MNIST supernet never saw: texture patches of real photos.

Eight classes, one per photograph shipped with scikit-image (brick wall, grass, gravel, coins,
the Moon's surface, the Hubble deep field, a retina, an immunohistochemistry slide): every
class is the texture of one surface, so telling them apart needs texture features, not the
garment shapes Fashion-MNIST taught. Non-overlapping 32x32 grey patches (the supernet's
domain is grey 28 px images; colour is dropped so it is not a shortcut) are cut on a grid;
the top 70% of each photo's rows go to ``train/``, the rest to ``val/``, so no validation patch
overlaps a training one. Written as ``OUT/train/<class>/*.png`` and ``OUT/val/<class>/*.png``
(the layout ``--data`` reads as one labelled set with a train and a validation split).

Needs scikit-image (its photos are inside the wheel: nothing is downloaded).
Chosen before any result was seen and not changed after ("do not tune on it").

    python benchmarks/make_unseen.py --out runs/unseen-textures
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

CLASSES = {"brick": "brick", "grass": "grass", "gravel": "gravel", "coins": "coins",
           "moon": "moon", "hubble": "hubble_deep_field", "retina": "retina",
           "ihc": "immunohistochemistry"}
PATCH = 32
TRAIN_ROWS = 0.7


def grey(img: np.ndarray) -> np.ndarray:
    """uint8 grey image (ITU-R 601 luma for colour photos)."""
    if img.ndim == 3:
        img = img[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def patches(img: np.ndarray, size: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Non-overlapping ``size`` patches: (train rows, val rows); photos larger than 512 px
    are shrunk to 512 first so every class has a similar number of patches."""
    from PIL import Image

    h, w = img.shape
    scale = 512 / max(h, w)
    if scale < 1:
        img = np.asarray(Image.fromarray(img).resize((round(w * scale), round(h * scale)),
                                                     Image.BILINEAR))
    h, w = img.shape
    cut = int(h * TRAIN_ROWS) // size * size
    train, val = [], []
    for y in range(0, h - size + 1, size):
        for x in range(0, w - size + 1, size):
            patch = img[y:y + size, x:x + size]
            if y + size <= cut:
                train.append(patch)
            elif y >= cut:
                val.append(patch)
    return train, val


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/unseen-textures"))
    args = ap.parse_args()
    try:
        from skimage import data
    except ImportError:
        raise SystemExit("error: needs scikit-image (pip install scikit-image)") from None
    from PIL import Image

    counts = {}
    for name, loader in CLASSES.items():
        train, val = patches(grey(getattr(data, loader)()), PATCH)
        for split, items in (("train", train), ("val", val)):
            folder = args.out / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i, p in enumerate(items):
                Image.fromarray(p).save(folder / f"{name}_{i:04d}.png")
        counts[name] = (len(train), len(val))
    total = [sum(c[i] for c in counts.values()) for i in (0, 1)]
    print(f"wrote {args.out}: {total[0]} train / {total[1]} val patches of {PATCH} px, "
          + ", ".join(f"{k} {a}/{b}" for k, (a, b) in counts.items()))


if __name__ == "__main__":
    main()
