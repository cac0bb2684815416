"""The built-in ``fashion-mnist-sample``: a class-balanced sample of Fashion-MNIST shipped
inside the package (``edgessl/assets/fashion-mnist-sample.npz``), so that the default
``edgessl search`` scores candidates on the domain its supernet was trained on, offline and
without Debian's ``dataset-fashion-mnist``.

Fashion-MNIST is (c) Zalando SE, MIT licence (``edgessl/assets/FASHION-MNIST-LICENSE``). The
sample's ``train`` split is drawn from Fashion-MNIST's training images (the search's kNN bank
and proxy validation come from it), its ``test`` split from Fashion-MNIST's test images (never
used for a choice; the search reports the pick's accuracy on it). Rebuild it with
``python -m edgessl.data.make_sample`` (needs the full data set).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgessl.data.images import ImageSet
from edgessl.errors import BadInput

ASSET = Path(__file__).resolve().parent.parent / "assets" / "fashion-mnist-sample.npz"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot"]
PER_CLASS = {"train": 500, "test": 200}
SEED = 0


def load(split: str, path: Path = ASSET) -> ImageSet:
    """The sample's ``split`` (train, test or all) as an ImageSet."""
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
