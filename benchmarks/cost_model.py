"""Analytic cost model vs fvcore: per-arch time ratio, and 10,000 archs costed in-process.

Run: python benchmarks/cost_model.py [--n-fvcore 20] [--write]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from _machine import machine, publish, today

from edgessl.cost.flops import build_reference_network, fvcore_macs
from edgessl.spaces import get_space


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-fvcore", type=int, default=20, help="archs per space timed with fvcore")
    ap.add_argument("--n-analytic", type=int, default=10_000)
    ap.add_argument("--write", action="store_true", help="write the figures into BENCHMARKS.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    rows = []
    for name in ("mobilenet", "resnet"):
        space = get_space(name)
        rng = np.random.default_rng(0)
        archs = [space.sample(rng) for _ in range(args.n_analytic)]
        space.block.cache_clear()
        space._block_cost.cache_clear()
        space._fixed_cost.cache_clear()
        t0 = time.perf_counter()
        for a in archs:
            space.cost(a)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        for a in archs:
            space.cost(a)
        warm = time.perf_counter() - t0
        t_fv = 0.0
        t_an = 0.0
        for a in archs[: args.n_fvcore]:
            t0 = time.perf_counter()
            net, res = build_reference_network(a)
            fvcore_macs(net, res)
            t_fv += time.perf_counter() - t0
            t0 = time.perf_counter()
            space.cost(a)
            t_an += time.perf_counter() - t0
        per_fv = t_fv / args.n_fvcore
        per_an_cold = cold / len(archs)
        rows.append((name, len(archs), cold, warm, per_fv * 1e3, per_an_cold * 1e6,
                     per_fv / per_an_cold))
    lines = [
        "## Cost model: analytic vs fvcore",
        "",
        f"`python benchmarks/cost_model.py --write` on {today()}; {machine()}.",
        "fvcore = build the network and run FlopCountAnalysis (the reference); analytic = "
        "`space.cost(arch)` from the Arch alone, on a cold cache (first sight of every block).",
        "",
        "| space | archs | 10k archs, cold cache (s) | same, warm (s) | fvcore per arch (ms) "
        "| analytic per arch, cold (us) | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r[0]} | {r[1]} | {r[2]:.3f} | {r[3]:.3f} | {r[4]:.0f} | {r[5]:.1f} "
                     f"| {r[6]:,.0f}x |")
    publish("cost_model", lines, args.write)


if __name__ == "__main__":
    main()
