"""How reliable is the yardstick, and which proxy tracks it? Test-split noise vs proxy pools.

``search_vs_random.py`` judges the proxy by Spearman(proxy, test kNN) over random subnets that
differ by a point or two. Two questions decide what that figure can reach:

1. How noisy is the test figure itself? Each subnet's kNN accuracy is measured on two
   disjoint halves of the test split (5,000 + 5,000 images, bank: 5,000 training images);
   Spearman between the halves is the split-half reliability (the ceiling for any proxy
   judged against one half), and the accuracy and vote share on all 10,000 (bank 10,000) are
   the better yardsticks.
2. Which proxy tracks them: the screening score (vote share, 500 bank / 300 held-out images),
   a larger split (2,000 / 1,000), or leave-one-out vote share over 800, 2,000 and 5,000
   training images of ``--proxy-data`` (the refine step's score), each with BatchNorm
   re-estimated on 256 or 1,024 images.

Subnets: the random feasible subnets of a ``search_vs_random.py`` result; one line per subnet
is printed and the results file is rewritten after each, so a stopped run keeps what it did.

    python benchmarks/proxy_reliability.py --seeds 0
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import machine, repo_relative, today  # noqa: E402
from _runs import fail  # noqa: E402

from edgessl.arch import Arch  # noqa: E402
from edgessl.data import eval_tensors, open_dataset  # noqa: E402
from edgessl.data.sources import labelled_splits  # noqa: E402
from edgessl.evaluate import knn_accuracy, knn_vote_share, recalibrate_bn  # noqa: E402
from edgessl.search.proxy import load_supernet  # noqa: E402
from edgessl.search.run import default_supernet  # noqa: E402
from edgessl.utils import atomic_write_text  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "proxy_reliability.json"


@torch.no_grad()
def _feats(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([net(b) for b in x.split(256)]).float()


def measure(supernet, arch: Arch, test: tuple, proxy: tuple) -> dict[str, float]:
    """Every test-side and proxy-side figure of one subnet."""
    (bx, by, tx, ty), (px, py) = test, proxy
    net = recalibrate_bn(supernet.extract(arch), list(bx[:2000].split(256)))
    bf, tf = _feats(net, bx), _feats(net, tx)
    h = len(tx) // 2
    d = {"acc5k_a": knn_accuracy(bf[:h], by[:h], tf[:h], ty[:h]),
         "acc5k_b": knn_accuracy(bf[:h], by[:h], tf[h:], ty[h:]),
         "acc10k": knn_accuracy(bf, by, tf, ty), "vs10k": knn_vote_share(bf, by, tf, ty)}
    for calib in (256, 1024):
        net = recalibrate_bn(supernet.extract(arch), list(px[300:300 + calib].split(64)))
        f = _feats(net, px)
        d[f"p500/300 bn{calib}"] = knn_vote_share(f[300:800], py[300:800], f[:300], py[:300])
        d[f"p2000/1000 bn{calib}"] = knn_vote_share(f[1000:3000], py[1000:3000], f[:1000],
                                                    py[:1000])
        for n in (800, 2000, 5000):
            d[f"loo{n} bn{calib}"] = knn_vote_share(f[:n], py[:n], f[:n], py[:n],
                                                    leave_one_out=True)
        d[f"loo5000acc bn{calib}"] = knn_accuracy(f, py, f, py, leave_one_out=True)
    return d


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--random", default=str(ROOT / "benchmarks" / "results"
                                           / "search_vs_random-fashion-mnist.json"))
    p.add_argument("--seeds", default="0", help="which seeds' random subnets")
    p.add_argument("--data", default="fashion-mnist", help="the labelled set tested on")
    p.add_argument("--proxy-data", default="fashion-mnist-sample")
    args = p.parse_args()
    try:
        seeds = {int(s) for s in args.seeds.split(",")}
    except ValueError:
        fail(f"--seeds {args.seeds}: give seed numbers separated by commas, e.g. 0,1,2")
    try:
        source = json.loads(Path(args.random).read_text())
        rows = [(r["seed"], x) for r in source["runs"] if r["seed"] in seeds for x in r["random"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        fail(f"--random {args.random}: not a readable search_vs_random.py result ({e})")
    supernet, info = load_supernet(source["args"].get("supernet") or str(default_supernet()))
    res = int(info["resolution"])
    train, test = labelled_splits(args.data, None)
    bx, by = eval_tensors(train.head(10000), res)
    tx, ty = eval_tensors(test.head(10000), res)
    sample = open_dataset(args.proxy_data, "train")
    px, py = eval_tensors(sample.subset(np.random.default_rng(0).permutation(len(sample))), res)
    out, t0 = [], time.time()
    for i, (seed, r) in enumerate(rows):
        d = {"seed": seed, "stored_test": r["test_knn"], "stored_proxy": r["proxy"],
             **measure(supernet, Arch.from_dict(r["arch"]), (bx, by, tx, ty), (px, py))}
        out.append(d)
        half = spearmanr([x["acc5k_a"] for x in out], [x["acc5k_b"] for x in out]).statistic
        print(f"{i + 1}/{len(rows)} subnets, {time.time() - t0:.0f} s; split-half Spearman "
              f"so far {half:.2f}", flush=True)
        atomic_write_text(OUT, json.dumps({
            "command": " ".join(sys.argv), "date": today(), "machine": machine(),
            "source": repo_relative(args.random), "done": len(out), "of": len(rows),
            "subnets": out}, indent=1) + "\n")


if __name__ == "__main__":
    main()
