"""Rebuild the built-in ``fashion-mnist-sample`` (:mod:`edgessl.data.fm_sample`) from the full
Fashion-MNIST: ``python -m edgessl.data.make_sample [--out PATH]``."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import torch

from edgessl.data.fm_sample import ASSET, PER_CLASS, SEED
from edgessl.data.sources import open_dataset
from edgessl.utils import atomic_write


def balanced_indices(labels: np.ndarray, per_class: int, seed: int = SEED) -> np.ndarray:
    """``per_class`` indices of every class, drawn without replacement, in a seeded order."""
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
             for c in np.unique(labels)]
    return rng.permutation(np.concatenate(picks))


def build(path: Path = ASSET) -> Path:
    """Draw the sample from the full Fashion-MNIST (``open_dataset("fashion-mnist")``)."""
    arrays = {}
    for split, n in PER_CLASS.items():
        full = open_dataset("fashion-mnist", split)
        idx = balanced_indices(full.labels, n)
        arrays[f"{split}_images"] = full.images[torch.from_numpy(idx), 0].numpy()
        arrays[f"{split}_labels"] = full.labels[idx].astype(np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write(path, lambda p: Path(p).write_bytes(buf.getvalue()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSET)
    args = parser.parse_args(argv)
    path = build(args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
