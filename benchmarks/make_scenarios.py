"""Make labelled downstream scenarios from real Fashion-MNIST images (no download).

Each scenario is an image folder in the split layout ``NAME/train/<class>/*.png`` +
``NAME/test/<class>/*.png`` (``--data``/``--downstream`` take it as one labelled set with its
own test split). Train images come from Fashion-MNIST's training split, test images from its
test split, so no scenario's test image was seen in any pre-training on Fashion-MNIST's
train split. Per class the first images of a seeded permutation are taken.

- ``fm-footwear``: Sandal, Sneaker, Ankle boot (3 classes; 2,000 train / 1,000 test each):
  fine distinctions within one kind of object.
- ``fm-tops``: T-shirt/top, Pullover, Coat, Shirt (4 classes; 2,000 / 1,000 each): the four
  upper-body garments, Fashion-MNIST's most confused classes.
- ``fm-rotated``: all 10 classes (600 / 300 each), every image rotated by its own seeded
  angle in [0, 360) degrees: the same objects, orientation no longer a cue.
- ``fm-lowres``: all 10 classes (600 / 300 each), reduced from 28x28 to 7x7 pixels (box
  filter) and stored so: shapes without texture, the domain of cheap sensors.

    python benchmarks/make_scenarios.py                      # into $EDGESSL_CACHE/scenarios
    python benchmarks/make_scenarios.py --out data/scenarios --only fm-footwear,fm-tops

A scenario is written into a temporary folder and renamed into place when complete, with a
``manifest.json``; an existing complete scenario is left as it is.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgessl.data import open_dataset  # noqa: E402
from edgessl.utils import atomic_write_text, cache_dir  # noqa: E402

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"]
SEED = 0


def _rotate(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return img.rotate(float(rng.uniform(0, 360)), resample=Image.BILINEAR)


def _lowres(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return img.resize((7, 7), Image.BOX)


@dataclass(frozen=True)
class Scenario:
    name: str
    classes: tuple[int, ...]
    train_per_class: int
    test_per_class: int
    transform: Callable[[Image.Image, np.random.Generator], Image.Image] | None = None
    what: str = ""


SCENARIOS = {s.name: s for s in (
    Scenario("fm-footwear", (5, 7, 9), 2000, 1000, None,
             "Sandal, Sneaker, Ankle boot"),
    Scenario("fm-tops", (0, 2, 4, 6), 2000, 1000, None,
             "T-shirt/top, Pullover, Coat, Shirt"),
    Scenario("fm-rotated", tuple(range(10)), 600, 300, _rotate,
             "all 10 classes, each image rotated by a seeded angle in [0, 360)"),
    Scenario("fm-lowres", tuple(range(10)), 600, 300, _lowres,
             "all 10 classes at 7x7 pixels (box filter from 28x28)"),
)}


def _slug(name: str) -> str:
    return name.lower().replace("/", "-").replace(" ", "-")


def write_scenario(s: Scenario, out: Path) -> dict:
    """Write scenario ``s`` under ``out/s.name`` (complete or absent); its manifest."""
    final = out / s.name
    if (final / "manifest.json").is_file():
        return json.loads((final / "manifest.json").read_text())
    tmp = out / f".{s.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    counts = {}
    for split, per_class in (("train", s.train_per_class), ("test", s.test_per_class)):
        images = open_dataset("fashion-mnist", split)
        labels = images.labels
        rng = np.random.default_rng([SEED, s.classes[0], len(s.classes), split == "test"])
        for c in s.classes:
            folder = tmp / split / _slug(CLASSES[c])
            folder.mkdir(parents=True)
            idx = rng.permutation(np.flatnonzero(labels == c))[:per_class]
            for i in idx:
                img = Image.fromarray(images.images[int(i), 0].numpy())
                if s.transform is not None:
                    img = s.transform(img, rng)
                img.save(folder / f"{int(i):05d}.png")
            counts[f"{split}/{_slug(CLASSES[c])}"] = len(idx)
    manifest = {"name": s.name, "what": s.what, "source": "Fashion-MNIST (Debian "
                "dataset-fashion-mnist files)", "seed": SEED, "layout": "train/ + test/",
                "classes": [CLASSES[c] for c in s.classes], "images": counts}
    atomic_write_text(tmp / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=cache_dir() / "scenarios")
    ap.add_argument("--only", default=",".join(SCENARIOS),
                    help=f"comma list of: {', '.join(SCENARIOS)}")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario {unknown[0]!r}; known: {', '.join(SCENARIOS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for n in names:
        m = write_scenario(SCENARIOS[n], args.out)
        print(f"{args.out / n}: {m['what']}; {sum(m['images'].values())} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
