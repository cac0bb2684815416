"""Evaluation at scale: ``edgessl eval`` on a generated labelled folder with a 50,000-image
bank (peak memory and wall time of the whole command), and the mini-batch linear probe that
the bank size selects against the exact full-batch L-BFGS probe on the same features of a
subset both can fit.

Writes BENCHMARKS.md (section eval_scale) with --write and the raw figures to
benchmarks/results/eval_scale.json.

    flock /tmp/edgessl-heavy.lock env OMP_NUM_THREADS=1 python benchmarks/eval_scale.py \\
        --work /tmp/edgessl-eval-scale --write
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import machine, publish, today  # noqa: E402

from edgessl.checkpoint import load_network  # noqa: E402
from edgessl.data import eval_loader, open_dataset  # noqa: E402
from edgessl.evaluate import extract_features, linear_probe_accuracy, recalibrate_bn  # noqa: E402
from edgessl.search.run import default_supernet  # noqa: E402
from edgessl.utils import atomic_write_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "eval_scale.json"
CLASSES = 10


def labelled_image(rng: np.random.Generator, label: int, side: int = 32) -> Image.Image:
    """Class ``label``: stripes at its own angle and frequency, random phase, colour and
    noise (learnable, not trivially separable)."""
    y, x = np.mgrid[0:side, 0:side] / side
    angle = np.pi * label / CLASSES + rng.normal(0, 0.15)
    freq = 3 + label % 4 + rng.normal(0, 0.3)
    wave = np.sin(2 * np.pi * freq * (np.cos(angle) * x + np.sin(angle) * y) + rng.uniform(0, 6))
    colour = rng.uniform(60, 200, 3)
    img = colour + 50 * wave[..., None] + rng.normal(0, 25, (side, side, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def make_tree(root: Path, bank: int, test: int) -> Path:
    """ROOT/train/<class>/ (``bank`` images) and ROOT/val/<class>/ (``test``); kept when
    already there."""
    for split, n, seed in (("train", bank, 0), ("val", test, 1)):
        folder = root / split
        if folder.is_dir() and sum(1 for _ in folder.rglob("*.jpg")) == n:
            continue
        rng = np.random.default_rng(seed)
        for c in range(CLASSES):
            (folder / f"c{c}").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            labelled_image(rng, i % CLASSES).save(folder / f"c{i % CLASSES}" / f"{i:06d}.jpg",
                                                  quality=90)
    return root


def run_eval(data: Path, bank: int, test: int, cache: Path) -> dict:
    """The whole ``edgessl eval`` command under /usr/bin/time -v: its JSON, wall, peak RSS."""
    env = {**os.environ, "EDGESSL_CACHE": str(cache), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "edgessl", "eval",
           str(default_supernet()), "--data", str(data), "--arch", "smallest", "--resolution",
           "32", "--bank-size", str(bank), "--test-size", str(test), "--device", "cpu",
           "--json"]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - t
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    return {"command": " ".join(cmd[cmd.index("eval"):]),
            "result": json.loads(r.stdout.splitlines()[-1]), "wall_s": wall,
            "peak_rss_mb": rss_kb / 1024}


def probes(data: Path, subset: int, test: int) -> dict:
    """Exact (L-BFGS) and mini-batch probes on the same features of ``subset`` bank images."""
    net = load_network(default_supernet(), "smallest").module
    bank = open_dataset(str(data), "train").head(subset)
    held = open_dataset(str(data), "test").head(test)
    recalibrate_bn(net, eval_loader(bank.head(2000), 32))
    t = time.perf_counter()
    xtr, ytr = extract_features(net, eval_loader(bank, 32))
    xte, yte = extract_features(net, eval_loader(held, 32))
    out = {"subset": subset, "test": test, "features_s": time.perf_counter() - t,
           "feature_dim": int(xtr.shape[1])}
    for method in ("lbfgs", "sgd"):
        t = time.perf_counter()
        out[method] = linear_probe_accuracy(xtr, ytr, xte, yte, method=method)
        out[f"{method}_s"] = time.perf_counter() - t
    out["difference_points"] = 100 * (out["sgd"] - out["lbfgs"])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", default="/tmp/edgessl-eval-scale")
    p.add_argument("--bank", type=int, default=50_000)
    p.add_argument("--test", type=int, default=10_000)
    p.add_argument("--subset", type=int, default=20_000,
                   help="bank images both probes fit (the exact probe's default limit)")
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    work = Path(args.work)
    t0 = time.time()
    data = make_tree(work / "data", args.bank, args.test)
    scale = run_eval(data, args.bank, args.test, work / "cache")
    compare = probes(data, args.subset, args.test)
    result = {"date": today(), "machine": machine(), "eval": scale, "probes": compare,
              "minutes": (time.time() - t0) / 60}
    RESULTS.parent.mkdir(exist_ok=True)
    atomic_write_text(RESULTS, json.dumps(result, indent=1) + "\n")
    e, c = scale["result"], compare
    lines = [
        "## Evaluation at scale", "",
        f"`OMP_NUM_THREADS=1 python benchmarks/eval_scale.py --work {args.work} --write` on "
        f"{result['date']}; {result['machine']}; one thread, the other core busy with a "
        f"training run; {result['minutes']:.0f} min. Raw: benchmarks/results/eval_scale.json.",
        "",
        f"Data: a generated labelled tree, `train/` {args.bank:,} and `val/` {args.test:,} "
        "JPEGs of 32x32 px in 10 classes (stripes of a class-specific angle and frequency, "
        "random colour and noise). Network: the smallest subnet of the shipped supernet at 32 "
        "px.", "",
        f"- `edgessl {scale['command']}` finished in **{scale['wall_s']:.0f} s** with a peak "
        f"resident memory of **{scale['peak_rss_mb']:.0f} MB** (bank {e['bank_size']:,} of "
        f"{e['bank_total']:,}, test {e['test_size']:,} of {e['test_total']:,}; kNN "
        f"{100 * e['knn']:.2f}%, linear {100 * e['linear']:.2f}% with the mini-batch probe "
        "that `--probe auto` picks above 20,000 bank images).",
        f"- Same features of the first {c['subset']:,} bank images ({c['feature_dim']}-d), "
        f"{c['test']:,} test images: exact L-BFGS probe **{100 * c['lbfgs']:.2f}%** "
        f"({c['lbfgs_s']:.0f} s), mini-batch probe **{100 * c['sgd']:.2f}%** "
        f"({c['sgd_s']:.0f} s): {c['difference_points']:+.2f} points.",
    ]
    publish("eval_scale", lines, args.write)


if __name__ == "__main__":
    main()
