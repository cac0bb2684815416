"""Proxy quality: which proxy ranks subnets like their accuracy does, for its cost?

The search scores each candidate with inherited supernet weights on held-out *training*
images of its data (``edgessl search``'s default: the built-in ``fashion-mnist-sample``). This
script compares proxy designs against a judge that never touches a test split: the kNN
accuracy of the same inherited-weight subnet on Fashion-MNIST *training* images outside the
sample (bank ``--judge-bank`` images, queries ``--judge-queries`` others). So choosing the
proxy here uses no test image; the search itself is judged on the test split elsewhere
(``search_vs_random.py``).

For ``--n`` subnets drawn uniformly under the budget, features are computed once per
calibration size on the sample's 5,000 training images, and every design is scored from them:
hard kNN accuracy and soft kNN (mean vote share of the true class) on bank/query splits of
several sizes, and leave-one-out kNN over the whole sample. Reports Spearman(design, judge)
and the seconds per candidate each design would cost.

    python benchmarks/proxy_quality.py --supernet runs/fm-mbv-A/last.ckpt
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

from _machine import machine, publish, today  # noqa: E402
from search_vs_random import uniform_feasible  # noqa: E402

from edgessl.data import eval_loader, open_dataset  # noqa: E402
from edgessl.data.fm_sample import PER_CLASS, SEED  # noqa: E402
from edgessl.evaluate import extract_features, knn_accuracy, recalibrate_bn  # noqa: E402
from edgessl.search.budget import Budget, Constraints  # noqa: E402
from edgessl.utils import atomic_write_text  # noqa: E402

# (bank, queries) splits of the sample's train images scored with hard and soft kNN
SPLITS = ((500, 300), (1000, 500), (2000, 1000), (4000, 1000))
CALIB = (128, 512)


def soft_knn(bank: torch.Tensor, bank_y: torch.Tensor, query: torch.Tensor,
             query_y: torch.Tensor, k: int = 20, temperature: float = 0.07,
             exclude_self: bool = False) -> float:
    """Mean share of the temperature-weighted vote of the ``k`` nearest (cosine) bank images
    that goes to the query's true class: kNN accuracy's lower-variance sibling."""
    b = torch.nn.functional.normalize(bank.float(), dim=1)
    q = torch.nn.functional.normalize(query.float(), dim=1)
    sim = q @ b.T
    if exclude_self:
        sim.fill_diagonal_(-2.0)
    top, idx = sim.topk(k, dim=1)
    w = (top / temperature).exp()
    hit = (bank_y[idx] == query_y[:, None]).float()
    return float(((w * hit).sum(1) / w.sum(1)).mean())


def loo_knn(feats: torch.Tensor, y: torch.Tensor, k: int = 20,
            temperature: float = 0.07) -> float:
    """Leave-one-out hard kNN accuracy over one labelled set (each image against the rest)."""
    f = torch.nn.functional.normalize(feats.float(), dim=1)
    sim = f @ f.T
    sim.fill_diagonal_(-2.0)
    top, idx = sim.topk(k, dim=1)
    w = (top / temperature).exp()
    votes = torch.zeros(len(f), int(y.max()) + 1).scatter_add_(1, y[idx], w)
    return float((votes.argmax(1) == y).float().mean())


def judge_split(bank: int, queries: int):
    """Fashion-MNIST training images outside the built-in sample: (bank set, query set)."""
    from edgessl.data.make_sample import balanced_indices

    full = open_dataset("fashion-mnist", "train")
    taken = set(balanced_indices(full.labels, PER_CLASS["train"], SEED).tolist())
    rest = np.array([i for i in range(len(full)) if i not in taken])
    rest = np.random.default_rng(1).permutation(rest)
    return full.subset(rest[:bank]), full.subset(rest[bank:bank + queries])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--supernet", default=None, help="default: the shipped supernet")
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--budget-mflops", type=float, default=600.0)
    ap.add_argument("--judge-bank", type=int, default=10000)
    ap.add_argument("--judge-queries", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    from edgessl.search.proxy import load_supernet
    from edgessl.search.run import default_supernet

    supernet, info = load_supernet(args.supernet or str(default_supernet()))
    space, res = supernet.space, int(info["resolution"])
    cons = Constraints(space, Budget(args.budget_mflops), 224)
    archs = [space.decode(g) for g in
             uniform_feasible(cons, args.n, np.random.default_rng(args.seed))]
    sample = open_dataset("fashion-mnist-sample", "train")
    perm = np.random.default_rng(args.seed).permutation(len(sample))
    sample = sample.subset(perm)  # a fixed random order: splits are its leading images
    jbank, jquery = judge_split(args.judge_bank, args.judge_queries)
    y = torch.as_tensor(sample.labels)
    rows = []
    for a in archs:
        net = supernet.extract(a)
        row = {"arch": a.to_dict(), "mflops": space.mflops(a)}
        for calib in CALIB:
            t = time.time()
            recalibrate_bn(net, eval_loader(sample.head(calib), res), "cpu")
            f, _ = extract_features(net, eval_loader(sample, res), "cpu")
            per_image = (time.time() - t) / (calib + len(sample))
            row[f"seconds_per_image_c{calib}"] = per_image
            for nb, nq in SPLITS:
                bank, query = f[nq:nq + nb], f[:nq]
                args_ = (bank, y[nq:nq + nb], query, y[:nq])
                row[f"hard_c{calib}_b{nb}_q{nq}"] = knn_accuracy(*args_)
                row[f"soft_c{calib}_b{nb}_q{nq}"] = soft_knn(*args_)
            row[f"loo_c{calib}_all"] = loo_knn(f, y)
            row[f"loosoft_c{calib}_all"] = soft_knn(f, y, f, y, exclude_self=True)
        recalibrate_bn(net, eval_loader(jbank.head(2000), res), "cpu")
        fb, yb = extract_features(net, eval_loader(jbank, res), "cpu")
        fq, yq = extract_features(net, eval_loader(jquery, res), "cpu")
        row["judge"] = knn_accuracy(fb, yb, fq, yq)
        rows.append(row)
        print(f"{row['mflops']:6.0f} MF judge {row['judge']:.4f} hard500/300 "
              f"{row['hard_c128_b500_q300']:.4f} loo {row['loo_c512_all']:.4f}", flush=True)
    judge = np.array([r["judge"] for r in rows])
    designs = [k for k in rows[0] if k.startswith(("hard", "soft", "loo"))]
    table = []
    for d in designs:
        calib = int(d.split("_c")[1].split("_")[0])
        n_img = (len(sample) if d.endswith("_all") else
                 sum(int(p[1:]) for p in d.split("_")[2:]))
        sec = float(np.mean([r[f"seconds_per_image_c{calib}"] for r in rows])) * (calib + n_img)
        rho = float(spearmanr([r[d] for r in rows], judge).statistic)
        table.append({"design": d, "spearman_with_judge": rho, "seconds_per_candidate": sec})
    rho_mflops = float(spearmanr([r["mflops"] for r in rows], judge).statistic)
    payload = {"command": " ".join(sys.argv), "date": today(), "machine": machine(),
               "supernet": info["path"], "resolution": res, "rows": rows, "designs": table,
               "spearman_mflops_judge": rho_mflops,
               "judge_spread": {"min": float(judge.min()), "max": float(judge.max()),
                                "std": float(judge.std())}}
    atomic_write_text(ROOT / "benchmarks" / "results" / "proxy_quality.json",
                      json.dumps(payload, indent=1) + "\n")
    lines = [f"`python benchmarks/proxy_quality.py {' '.join(sys.argv[1:])}` on {today()}; "
             f"{machine()}. Supernet `{info['path']}` at {res} px; {len(rows)} subnets "
             f"uniform under {args.budget_mflops:g} MFLOPs at 224. Judge: kNN of the "
             f"inherited-weight subnet on Fashion-MNIST training images outside the sample "
             f"(bank {args.judge_bank}, queries {args.judge_queries}; no test image): "
             f"{100 * judge.min():.2f}-{100 * judge.max():.2f}% (std "
             f"{100 * judge.std():.2f}); Spearman(MFLOPs, judge) {rho_mflops:.2f}.", "",
             "| proxy design (calibration images, bank, queries) | Spearman with judge | "
             "s per candidate |", "|---|---|---|"]
    for t in sorted(table, key=lambda t: -t["spearman_with_judge"]):
        lines.append(f"| {t['design']} | {t['spearman_with_judge']:.2f} | "
                     f"{t['seconds_per_candidate']:.2f} |")
    publish("proxy_quality", lines, args.write)


if __name__ == "__main__":
    main()
