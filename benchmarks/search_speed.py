"""Search speed: hard-constraint checks for 50,000 candidates, and candidates scored per second.

Run: python benchmarks/search_speed.py [--supernet CKPT] [--write]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _machine import machine, publish, today

from edgessl.search import Budget, Constraints
from edgessl.search.proxy import ProxyScorer, load_supernet, prepare_proxy_data
from edgessl.search.run import default_supernet
from edgessl.spaces import get_space


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--supernet", default=None)
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--score", type=int, default=12, help="candidates to score")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    rows = []
    for name in ("mobilenet", "resnet"):
        space = get_space(name)
        cons = Constraints(space, Budget(max_mflops=600 if name == "mobilenet" else 2000,
                                         max_mparams=20), 224)
        rng = np.random.default_rng(0)
        genes = np.stack([rng.integers(0, s, args.n) for s in space.gene_sizes()], axis=1)
        genes[:, 0] = space.resolutions.index(224)
        cons.feasible(genes[:10])  # build the lookup tables once
        t0 = time.perf_counter()
        ok = cons.feasible(genes)
        dt = time.perf_counter() - t0
        t0 = time.perf_counter()
        for g in genes[:2000]:
            space.cost(space.decode(g))
        per_arch = (time.perf_counter() - t0) / 2000
        rows.append((name, args.n, dt, ok.mean(), per_arch * args.n))
    net, info = load_supernet(args.supernet or str(default_supernet()))
    data = prepare_proxy_data("digits", int(info.get("resolution") or 32))
    scorer = ProxyScorer(net, data)
    space = net.space
    rng = np.random.default_rng(1)
    archs = [space.sample(rng, 224) for _ in range(args.score)]
    scorer.score(archs[0])
    t0 = time.perf_counter()
    for a in archs[1:]:
        scorer.score(a)
    per = (time.perf_counter() - t0) / (len(archs) - 1)
    lines = ["## Search speed", "",
             f"`python benchmarks/search_speed.py --write` on {today()}; {machine()}, "
             f"{torch.get_num_threads()} torch threads.", "",
             "| space | candidates | vectorised check (s) | feasible share | one by one, "
             "extrapolated (s) |", "|---|---|---|---|---|"]
    lines += [f"| {r[0]} | {r[1]:,} | {r[2]:.3f} | {r[3]:.2f} | {r[4]:.2f} |" for r in rows]
    lines += ["", f"Scoring (extract subnet, re-estimate BN on 128 images, kNN of 300 held-out "
              f"digits against a 500-image bank at {data.bank_x.shape[-1]} px): "
              f"**{1 / per:.2f} candidates/s** ({per:.2f} s each) on CPU, supernet "
              f"`{info['path']}`."]
    publish("search", lines, args.write)


if __name__ == "__main__":
    main()
