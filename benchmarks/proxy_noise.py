"""How much of the search's proxy is noise? Score variants against test accuracy.

The search ranks candidates by kNN on a few hundred held-out *training* images. When the
subnets of a supernet differ by a point or two, the ranking that reaches the search is mostly
sampling noise unless the score is measured carefully. This script takes the random feasible
subnets of a ``search_vs_random.py`` result (with their test-split kNN accuracy, measured
there) and re-scores each with inherited weights in several ways, then reports Spearman and
Kendall between each variant and the test accuracy, pooled and per seed:

- what is scored: kNN **accuracy** (0/1 per image) or the kNN **vote share** of the true class
  (continuous, ``edgessl.evaluate.knn_vote_share``);
- on what: the search's split (``--bank`` bank / ``--val`` held-out images), or leave-one-out
  over the first N images (every image a query against all others);
- BatchNorm re-estimated on 128, 256 or 1024 images.

    python benchmarks/search_vs_random.py --data fashion-mnist      # first: the random subnets
    python benchmarks/proxy_noise.py --write
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import machine, publish, repo_relative, today  # noqa: E402
from _runs import fail  # noqa: E402

from edgessl.arch import Arch  # noqa: E402
from edgessl.data import eval_tensors, open_dataset  # noqa: E402
from edgessl.evaluate import knn_accuracy, knn_vote_share, recalibrate_bn  # noqa: E402
from edgessl.search.proxy import load_supernet  # noqa: E402
from edgessl.search.run import default_supernet  # noqa: E402
from edgessl.utils import atomic_write_text  # noqa: E402

CALIB = (128, 256, 1024)


def variants(f: torch.Tensor, y: torch.Tensor, bank: int, val: int) -> dict[str, float]:
    """Every score of one network's features ``f`` (val images first, then the bank)."""
    vf, vy, bf, by = f[:val], y[:val], f[val:val + bank], y[val:val + bank]
    out = {f"accuracy {bank}/{val}": knn_accuracy(bf, by, vf, vy),
           f"vote share {bank}/{val}": knn_vote_share(bf, by, vf, vy)}
    for n in (bank + val, 1200):
        if n <= len(f):
            out[f"vote share, leave-one-out {n}"] = knn_vote_share(f[:n], y[:n], f[:n], y[:n],
                                                                    leave_one_out=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--random", default=str(ROOT / "benchmarks" / "results"
                                           / "search_vs_random-fashion-mnist.json"),
                   help="a search_vs_random.py result: its random subnets and test kNN")
    p.add_argument("--supernet", default=None, help="default: the result's, else the shipped")
    p.add_argument("--data", default="fashion-mnist-sample", help="what the proxy scores on")
    p.add_argument("--bank", type=int, default=500)
    p.add_argument("--val", type=int, default=300)
    p.add_argument("--write", action="store_true", help="results file and BENCHMARKS.md")
    args = p.parse_args()
    src = Path(args.random)
    if not src.is_file():
        fail(f"--random {src}: no such file (run benchmarks/search_vs_random.py first)")
    try:
        source = json.loads(src.read_text())
        runs = source["runs"]
        rows = [(r["seed"], x) for r in runs for x in r["random"]]
        archs = [Arch.from_dict(x["arch"]) for _, x in rows]
        test = np.array([x["test_knn"] for _, x in rows], float)
    except (ValueError, KeyError, TypeError) as e:
        fail(f"--random {src}: not a search_vs_random.py result ({e})")
    if args.bank < 20 or args.val < 20:
        fail(f"--bank {args.bank} / --val {args.val}: each must be at least 20")
    seeds = [s for s, _ in rows]
    ckpt = args.supernet or source.get("args", {}).get("supernet") or str(default_supernet())
    supernet, info = load_supernet(ckpt)
    res = int(info["resolution"] or 32)
    images = open_dataset(args.data, "train")
    need = max(args.bank + args.val, 1200, max(CALIB))
    perm = np.random.default_rng(0).permutation(len(images))[:need]
    x, y = eval_tensors(images.subset(perm), res)
    seed_of = np.array(seeds)
    scores: dict[str, list[float]] = {}
    t0 = time.time()
    for i, arch in enumerate(archs):
        for calib in CALIB:
            net = recalibrate_bn(supernet.extract(arch), list(x[-calib:].split(64)))
            with torch.no_grad():
                f = torch.cat([net(b) for b in x.split(256)]).float()
            for name, v in variants(f, y, args.bank, args.val).items():
                scores.setdefault(f"{name}, BN on {calib}", []).append(v)
        print(f"{i + 1}/{len(archs)} subnets, {time.time() - t0:.0f} s", flush=True)
    table = []
    for name, v in scores.items():
        v = np.array(v)
        per = [float(spearmanr(v[seed_of == seed], test[seed_of == seed]).statistic)
               for seed in sorted(set(seeds))]
        table.append({"variant": name, "spearman": float(spearmanr(v, test).statistic),
                      "kendall": float(kendalltau(v, test).statistic),
                      "spearman_per_seed": per, "spearman_median_seed": float(np.median(per))})
    lines = ["## Proxy noise: which score ranks subnets as test accuracy does", "",
             f"`python benchmarks/proxy_noise.py {' '.join(sys.argv[1:])}` on {today()}; "
             f"{machine()}. Supernet `{repo_relative(ckpt)}` ({res} px); {len(archs)} random "
             f"feasible subnets of `{repo_relative(src)}` (seeds {sorted(set(seeds))}), their "
             "test-split kNN accuracy as measured there; each re-scored on "
             f"`{args.data}` training images (BN re-estimated on the last N of the {need} drawn "
             "images; no labels used there).",
             "", "| score | BN images | Spearman (pooled) | Kendall | Spearman per seed | "
             "median |", "|---|---|---|---|---|---|"]
    for r in table:
        what, calib = r["variant"].rsplit(", BN on ", 1)
        lines.append(f"| {what} | {calib} | {r['spearman']:.2f} | {r['kendall']:.2f} | "
                     f"{', '.join(f'{s:.2f}' for s in r['spearman_per_seed'])} | "
                     f"{r['spearman_median_seed']:.2f} |")
    payload = {"command": " ".join(sys.argv), "date": today(), "machine": machine(),
               "supernet": repo_relative(ckpt), "resolution": res, "source": repo_relative(src),
               "args": vars(args), "table": table,
               "subnets": [{"seed": s, "arch": a.to_dict(), "test_knn": t,
                            "scores": {k: v[i] for k, v in scores.items()}}
                           for i, (s, a, t) in enumerate(zip(seeds, archs, test, strict=True))]}
    if args.write:
        atomic_write_text(ROOT / "benchmarks" / "results" / "proxy_noise.json",
                          json.dumps(payload, indent=1) + "\n")
    publish("proxy_noise", lines, args.write)


if __name__ == "__main__":
    main()
