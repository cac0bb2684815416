"""Does one network rule them all here? The study and the per-scenario search, measured.

1. Draw ``--n-variants`` random subnets of the supernet's space (seeded, deployment
   resolution 224) and run ``edgessl study --supernet`` on them with the pre-training set
   (the supernet's) and ``--downstream`` sets (scenario names from make_scenarios.py are
   made if missing), under torchrun with ``--ranks`` one-thread processes.
2. Run ``edgessl search --data A --data B --data C`` (``--search-data``) on the same
   supernet: one search per set and the cross matrix.

Reports the wall time of each, the Kendall matrix between sets, the correlations of
pre-training with downstream accuracy, each set's split-half agreement (the noise ceiling),
the winners, and the cross matrix. Raw outputs stay in ``--work``; a summary goes to
``benchmarks/results/study.json``, and with ``--write`` the section to BENCHMARKS.md.

    python benchmarks/study.py --write                          # shipped supernet, defaults
    python benchmarks/study.py --supernet runs/fm/last.ckpt --n-variants 120 --ranks 2 --write
    python benchmarks/study.py --n-variants 6 --skip-search     # a small check
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import machine, publish, today  # noqa: E402
from make_scenarios import SCENARIOS, write_scenario  # noqa: E402

from edgessl.checkpoint import load_network  # noqa: E402
from edgessl.search import default_supernet  # noqa: E402
from edgessl.spaces import get_space  # noqa: E402
from edgessl.utils import atomic_write_text, cache_dir  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "study.json"


def resolve_sets(names: str, scenarios: Path) -> list[str]:
    """Scenario names -> their folders (made when missing); anything else as given."""
    out = []
    for n in (s.strip() for s in names.split(",") if s.strip()):
        if n in SCENARIOS:
            write_scenario(SCENARIOS[n], scenarios)
            out.append(str(scenarios / n))
        else:
            out.append(n)
    return out


def run(cmd: list[str], ranks: int = 1) -> float:
    """Run an edgessl command (under torchrun with ``ranks`` > 1), one thread per process;
    returns its wall time."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    launch = ([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(ranks),
               "--master-port", "29561", "-m", "edgessl"] if ranks > 1
              else [sys.executable, "-m", "edgessl"])
    print("$", " ".join(["edgessl", *cmd]), flush=True)
    t0 = time.time()
    subprocess.run([*launch, *cmd], env=env, check=True)
    return time.time() - t0


def _f(v, digits: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def section(args, summary: dict) -> list[str]:
    s = summary["study"]
    corr, wins, primary = s["correlations"], s["winners"], s["primary"]
    c, w = corr[primary], wins[primary]
    lines = ["## Study: how architectures rank across downstream sets", "",
             f"`{summary['command']}` ({today()}; {machine()}).", "",
             f"{s['n_variants']} random subnets of the `{s['space']}` space "
             f"({s['mflops_range']} MFLOPs at 224), inherited weights from "
             f"`{summary['supernet']}`, {s['evaluation']}; pre-training set "
             f"`{c['pretrain']}`. Wall time: **{s['wall_s'] / 60:.1f} min** on "
             f"{args.ranks} one-thread process(es).", ""]
    lines += [f"Rank agreement ({primary} accuracy, Kendall's tau; split-half kNN agreement "
              "of each set is the noise ceiling):", "",
              "| set | tau with pre-training | Spearman | Pearson | split-half tau (kNN) |",
              "|---|---|---|---|---|"]
    half = corr.get("knn", {}).get("split_half", {})
    if c["pretrain"] in half:
        lines.append(f"| {c['pretrain']} (pre-training) | | | | "
                     f"{_f(half[c['pretrain']]['kendall'])} |")
    for name, r in (c["vs_pretrain"] or {}).items():
        lines.append(f"| {name} | {_f(r['kendall'])} | {_f(r['spearman'])} | "
                     f"{_f(r['pearson'])} | {_f(half.get(name, {}).get('kendall'))} |")
    m = c["kendall_matrix"]
    lines += ["", "Kendall's tau between downstream sets:", "",
              "| | " + " | ".join(m["sets"]) + " |", "|---" * (len(m["sets"]) + 1) + "|"]
    lines += [f"| {a} | " + " | ".join(_f(v) for v in row) + " |"
              for a, row in zip(m["sets"], m["tau"], strict=True)]
    lines += ["", "Winners (its rank on every set):", "", "| set | winner | MFLOPs | "
              f"{primary} | ranks |", "|---|---|---|---|---|"]
    for name, r in w["per_set"].items():
        ranks = ", ".join(f"{t} {k}" for t, k in r["rank_on"].items())
        lines.append(f"| {name} | `{r['winner'].replace('|', '/')}` | {r['mflops']:.0f} | "
                     f"{_f(r['accuracy'], 3)} | {ranks} |")
    taus = [r["kendall"] for r in (c["vs_pretrain"] or {}).values() if r["kendall"] is not None]
    verdict = ("one variant ranks first on every set" if w["wins_everywhere"] else
               f"no variant ranks first on every set ({len(w['distinct_winners'])} distinct "
               f"winners over {len(w['sets'])} sets)")
    lines += ["", f"**Verdict**: {verdict}; Kendall's tau between pre-training and downstream "
              f"accuracy ranges {_f(min(taus) if taus else None)} to "
              f"{_f(max(taus) if taus else None)}.", ""]
    if "search" in summary:
        x = summary["search"]
        labels = x["sets"]
        lines += [f"Per-scenario search (`{x['command']}`, {x['wall_s'] / 60:.1f} min): each "
                  "set's best architecture (rows) on every set's test split (kNN):", "",
                  "| searched on | MFLOPs | " + " | ".join(labels) + " |",
                  "|---|---|" + "---|" * len(labels)]
        for i, name in enumerate(labels):
            b, row = x["best"][name], x["knn"][i]
            cells = ["n/a"] * len(labels) if row is None else [f"{v:.3f}" for v in row]
            lines.append(f"| {name} | {'n/a' if b is None else round(b['mflops'])} | "
                         + " | ".join(cells) + " |")
        lines += [""]
    work = str(args.work).replace(str(cache_dir()), "$EDGESSL_CACHE")
    lines += [f"Raw: `benchmarks/results/study.json`; the study's own files in `{work}`.", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--supernet", default=str(default_supernet()))
    ap.add_argument("--n-variants", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--downstream", default="fm-tops,fm-rotated,digits")
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--bank", type=int, default=1000)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--bn-images", type=int, default=256)
    ap.add_argument("--probe-iters", type=int, default=100)
    ap.add_argument("--search-data", default="fm-tops,fm-rotated,digits")
    ap.add_argument("--budget-mflops", type=float, default=400)
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--generations", type=int, default=6)
    ap.add_argument("--skip-search", action="store_true")
    ap.add_argument("--work", type=Path, default=cache_dir() / "bench-study")
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = ap.parse_args(argv)
    scenarios = cache_dir() / "scenarios"
    space = get_space(load_network(args.supernet, supernet=True).space)
    rng = np.random.default_rng(args.seed)
    archs = []
    while len(archs) < args.n_variants:  # distinct subnets
        a = space.sample(rng, 224)
        if a not in archs:
            archs.append(a)
    tag = f"{space.name}-n{args.n_variants}-s{args.seed}"
    variants = args.work / f"subnets-{tag}.jsonl"
    args.work.mkdir(parents=True, exist_ok=True)
    atomic_write_text(variants, "".join(a.to_json() + "\n" for a in archs))
    out = args.work / f"study-{tag}"
    cmd = ["study", "--supernet", args.supernet, "--variants", str(variants), "--downstream",
           ",".join(resolve_sets(args.downstream, scenarios)), "--bank-size", str(args.bank),
           "--test-size", str(args.test), "--bn-images", str(args.bn_images),
           "--probe-iters", str(args.probe_iters), "--device", "cpu", "--out", str(out)]
    wall = run(cmd, args.ranks)
    corr = json.loads((out / "correlations.json").read_text())
    wins = json.loads((out / "winners.json").read_text())
    info = corr["info"]
    summary = {"command": ("torchrun --nproc-per-node "
                           f"{args.ranks} -m edgessl " if args.ranks > 1 else "edgessl ")
               + " ".join(cmd[:1] + [c.replace(str(cache_dir()), "$EDGESSL_CACHE")
                                     for c in cmd[1:]]),
               "supernet": args.supernet, "date": today(), "machine": machine(),
               "study": {"n_variants": info["n_variants"], "space": space.name,
                         "mflops_range": info["mflops_range"], "evaluation": info["evaluation"],
                         "primary": corr["primary"], "wall_s": round(wall, 1),
                         "correlations": {k: v for k, v in corr.items() if k in ("knn",
                                                                                 "linear")},
                         "winners": {k: v for k, v in wins.items() if k in ("knn", "linear")}}}
    if not args.skip_search:
        sout = args.work / f"search-{tag}"
        scmd = ["search", "--supernet", args.supernet, "--budget-mflops",
                str(args.budget_mflops), "--population", str(args.population),
                "--generations", str(args.generations), "--device", "cpu", "--out", str(sout)]
        for d in resolve_sets(args.search_data, scenarios):
            scmd += ["--data", d]
        swall = run(scmd)
        cross = json.loads((sout / "cross.json").read_text())
        summary["search"] = {"command": "edgessl " + " ".join(
            c.replace(str(cache_dir()), "$EDGESSL_CACHE") for c in scmd),
            "wall_s": round(swall, 1), **cross}
    atomic_write_text(RESULTS, json.dumps(summary, indent=1) + "\n")
    publish("study", section(args, summary), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
