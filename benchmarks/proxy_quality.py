"""Proxy quality: does the search's proxy score rank subnets like their real accuracy does?

For N subnets sampled under the budget, compare the search proxy (inherited supernet weights,
re-estimated BN, kNN on a held-out part of the *train* split, exactly what `edgessl search`
computes) with the kNN accuracy on the *test* split after a short standalone SSL fine-tune
of each subnet from its inherited weights. Reports the Spearman rank correlation.

Run: python benchmarks/proxy_quality.py --supernet runs/fm/last.ckpt --n 20 --steps 30 --write
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from _machine import machine, today, write_section
from scipy.stats import spearmanr

from edgessl.data import eval_loader, eval_split, open_dataset, set_epoch, ssl_loader
from edgessl.evaluate import extract_features, knn_accuracy, recalibrate_bn
from edgessl.search import Budget, Constraints
from edgessl.search.proxy import ProxyScorer, load_supernet, prepare_proxy_data
from edgessl.ssl import build_objective
from edgessl.train.model import SSLModel


def fine_tune(net: torch.nn.Module, images, resolution: int, steps: int, batch: int,
              ssl: str, seed: int) -> torch.nn.Module:
    """A short standalone SSL fine-tune from inherited weights (AdamW, constant lr)."""
    model = SSLModel(net, build_objective(ssl, net, net.feature_dim))
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=1e-4)
    loader = ssl_loader(images, resolution, batch, seed)
    set_epoch(loader, 0)
    model.train()
    for _, (x1, x2) in zip(range(steps), loader, strict=False):
        loss, _ = model(x1, x2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--supernet", required=True)
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--budget-mflops", type=float, default=600)
    ap.add_argument("--bank-size", type=int, default=5000)
    ap.add_argument("--test-size", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    t_start = time.time()
    supernet, info = load_supernet(args.supernet)
    res = int(info.get("resolution") or 32)
    space = supernet.space
    scorer = ProxyScorer(supernet, prepare_proxy_data(args.data, res, seed=args.seed))
    cons = Constraints(space, Budget(max_mflops=args.budget_mflops), 224)
    genes = cons.sample_feasible(args.n, np.random.default_rng(args.seed))
    archs = list(dict.fromkeys(space.decode(g) for g in genes))
    train = open_dataset(args.data, "train")
    bank, test = eval_split(args.data, args.bank_size, args.test_size)
    rows = []
    for i, arch in enumerate(archs):
        proxy = scorer.score(arch)
        net = scorer.subnet(arch)
        fine_tune(net, train, res, args.steps, args.batch_size, info.get("ssl") or "simclr",
                  args.seed + i)
        recalibrate_bn(net, eval_loader(bank.head(1000), res))
        bf, by = extract_features(net, eval_loader(bank, res))
        tf, ty = extract_features(net, eval_loader(test, res))
        acc = knn_accuracy(bf, by, tf, ty)
        rows.append({"arch": str(arch), "mflops": space.mflops(arch), "proxy": proxy,
                     "knn_after_finetune": acc})
        print(f"{i + 1}/{len(archs)} proxy {proxy:.4f} fine-tuned kNN {acc:.4f} "
              f"{space.mflops(arch):.0f} MFLOPs", flush=True)
    rho = spearmanr([r["proxy"] for r in rows], [r["knn_after_finetune"] for r in rows])[0]
    rho_flops = spearmanr([r["mflops"] for r in rows], [r["knn_after_finetune"] for r in rows])[0]
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "proxy_quality.json").write_text(json.dumps(rows, indent=1))
    text = "\n".join([
        "## Proxy quality", "",
        f"`python benchmarks/proxy_quality.py --supernet {args.supernet} --n {args.n} --steps "
        f"{args.steps} --write` on {today()}; {machine()}; {(time.time() - t_start) / 60:.0f} "
        "min.", "",
        f"{len(rows)} subnets sampled under {args.budget_mflops:g} MFLOPs at 224. Proxy = what "
        "`edgessl search` scores (inherited weights, BN re-estimated, kNN of 300 held-out train "
        f"images against a 500-image train bank at {res} px). Reference = kNN accuracy on "
        f"{args.test_size} test images (bank {args.bank_size}) after a standalone SSL "
        f"fine-tune of {args.steps} steps x {args.batch_size} images from inherited weights.",
        "",
        f"- Spearman(proxy, fine-tuned kNN) = **{rho:.3f}**",
        f"- for comparison, Spearman(MFLOPs, fine-tuned kNN) = {rho_flops:.3f}",
        f"- proxy range {min(r['proxy'] for r in rows):.3f}-{max(r['proxy'] for r in rows):.3f},"
        f" fine-tuned kNN range {min(r['knn_after_finetune'] for r in rows):.3f}-"
        f"{max(r['knn_after_finetune'] for r in rows):.3f} (per-subnet rows in "
        "benchmarks/results/proxy_quality.json)"])
    print(text)
    if args.write:
        write_section("proxy_quality", text)


if __name__ == "__main__":
    main()
