"""The built-in ``fashion-mnist-sample``: a class-balanced sample of Fashion-MNIST shipped
inside the package (``edgessl/assets/fashion-mnist-sample.npz``), so that the default
``edgessl search`` scores candidates on the domain its supernet was trained on, offline and
without Debian's ``dataset-fashion-mnist``.

Fashion-MNIST is (c) Zalando SE, MIT licence (``edgessl/assets/FASHION-MNIST-LICENSE``). The
sample's ``train`` split is drawn from Fashion-MNIST's training images (the search's kNN bank
and proxy validation come from it), its ``test`` split from Fashion-MNIST's test images (never
used for a choice; the search reports the pick's accuracy on it). Rebuild it with
``python -m edgessl.data.fm_sample`` (needs the full data set).
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import torch

from edgessl.errors import BadInput

ASSET = Path(__file__).resolve().parent.parent / "assets" / "fashion-mnist-sample.npz"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot"]
PER_CLASS = {"train": 500, "test": 200}
SEED = 0


def balanced_indices(labels: np.ndarray, per_class: int, seed: int = SEED) -> np.ndarray:
    """``per_class`` indices of every class, drawn without replacement, in a seeded order."""
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
             for c in np.unique(labels)]
    return rng.permutation(np.concatenate(picks))


def build(path: Path = ASSET) -> Path:
    """Draw the sample from the full Fashion-MNIST (``open_dataset("fashion-mnist")``)."""
    from edgessl.data.sources import open_dataset
    from edgessl.utils import atomic_write

    arrays = {}
    for split, n in PER_CLASS.items():
        full = open_dataset("fashion-mnist", split)
        idx = balanced_indices(full.labels, n)
        arrays[f"{split}_images"] = full.images[torch.from_numpy(idx), 0].numpy()
        arrays[f"{split}_labels"] = full.labels[idx].astype(np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write(path, lambda p: Path(p).write_bytes(buf.getvalue()))


def load(split: str, path: Path = ASSET):
    """The sample's ``split`` (train, test or all) as an ImageSet."""
    from edgessl.data.sources import ImageSet

    try:
        with np.load(path) as z:
            parts = {s: (z[f"{s}_images"], z[f"{s}_labels"]) for s in PER_CLASS}
    except (OSError, KeyError, ValueError) as exc:
        raise BadInput(f"built-in fashion-mnist-sample is unreadable ({path}: "
                       f"{type(exc).__name__}); reinstall edgessl") from None
    chosen = list(PER_CLASS) if split == "all" else [split]
    images = np.concatenate([parts[s][0] for s in chosen])
    labels = np.concatenate([parts[s][1] for s in chosen]).astype(np.int64)
    return ImageSet("fashion-mnist-sample", images=torch.from_numpy(images)[:, None],
                    labels=labels, classes=list(CLASSES), native_size=28)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSET)
    args = parser.parse_args(argv)
    path = build(args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
