"""Which objectives should the search evolve for its pick? A variant against a finished
``search_vs_random.py`` result, seed by seed, at the same cost.

``search_vs_random.py`` found that random search of equal cost (uniform feasible subnets, the
same screening and refine steps) beats the default NSGA-II pick: evolving the whole accuracy /
MFLOPs front spends evaluations on small networks. This script re-runs the search for each seed
of that result with other ``--objectives`` (default: ``accuracy`` alone, a single-objective
genetic search under the same constraints), everything else as recorded there (budget, proxy
data, population, generations, refine), and evaluates its pick on the same test yardstick.
The reference's figures (default pick, random-search pick, largest feasible) are read from its
JSON, not re-measured. Choices are made by the proxy only; the test split is the yardstick.

    python benchmarks/search_strategies.py --objectives accuracy --write
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import machine, publish, repo_relative, today  # noqa: E402
from _runs import fail  # noqa: E402
from search_vs_random import SETTINGS, search_config, test_knn  # noqa: E402

from edgessl.errors import EdgesslError  # noqa: E402
from edgessl.search.run import SearchSession  # noqa: E402
from edgessl.utils import atomic_write_text  # noqa: E402

REFERENCE = ROOT / "benchmarks" / "results" / "search_vs_random-fashion-mnist.json"


def run_variant(ref_args: dict, seed: int, objectives: tuple[str, ...],
                shape: dict[str, int] | None = None) -> dict:
    """The search with ``objectives`` (and ``shape``: another population / generations) as
    the reference ran it for ``seed``; its pick's test kNN."""
    cfg = search_config(ref_args, seed, Path(tempfile.mkdtemp(prefix=f"strategy{seed}-")),
                        objectives=objectives, held_out=False, **(shape or {}))
    t0 = time.time()
    session = SearchSession(cfg)
    result = session.run()
    seconds = time.time() - t0
    best = result.best
    return {"seed": seed, "objectives": list(objectives), "population": cfg.population,
            "generations": cfg.generations, "search_seconds": round(seconds, 1),
            "evaluations": len(result.candidates), "mflops": best.mflops,
            "proxy": best.refined if best.refined is not None else best.score,
            "test_knn": test_knn(session, best.arch, ref_args["data"], ref_args["bank"],
                                 ref_args["test"]),
            "arch": best.arch.to_dict()}


def summarize(objectives: tuple[str, ...], ref: dict, runs: list[dict]) -> list[str]:
    by_seed = {r["seed"]: r for r in ref["runs"]}
    label = ",".join(objectives) + "".join(
        f"`, `--{k} {runs[0][k]}" for k in ("population", "generations")
        if runs and runs[0].get(k) not in (None, ref["args"].get(k)))
    lines = ["Command: `python benchmarks/search_strategies.py " + " ".join(sys.argv[1:]) + "`  ",
             f"Date: {today()}; machine: {machine()}.  ",
             f"Reference: `{ref['command']}` ({ref['date']}): its default pick, random search "
             "of equal cost and largest feasible network, read from its JSON. Test kNN as "
             f"there (bank {ref['args']['bank']}, test {ref['args']['test']}).", "",
             f"| seed | objectives `{label}`: pick kNN | its refine score | evaluations | "
             "default `accuracy,mflops` pick | random-search pick | largest feasible |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    diffs = {"default": [], "random_search": [], "largest_feasible": []}
    for r in runs:
        base = by_seed[r["seed"]]
        t, p, mf = base["test_knn"], base["proxy"], base["mflops"]
        for k, key in (("default", "search"), ("random_search", "random_search"),
                       ("largest_feasible", "largest_feasible")):
            diffs[k].append(r["test_knn"] - t[key])
        lines.append(
            f"| {r['seed']} | {100 * r['test_knn']:.2f} ({r['mflops']:.0f} MF) | "
            f"{r['proxy']:.4f} | {r['evaluations']} | "
            f"{100 * t['search']:.2f} ({mf['search']:.0f} MF; {p['search']:.4f}) | "
            f"{100 * t['random_search']:.2f} ({mf['random_search']:.0f} MF; "
            f"{p['random_search']:.4f}) | {100 * t['largest_feasible']:.2f} |")
    parts = [f"{k.replace('_', ' ')} {', '.join(f'{100 * d:+.2f}' for d in v)} (median "
             f"{100 * float(np.median(v)):+.2f})" for k, v in diffs.items()]
    lines += ["", f"Objectives `{label}` minus each alternative, test kNN points per seed: "
              + "; ".join(parts) + "."]
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--objectives", default="accuracy",
                   help="the search's --objectives for the variant (comma-separated)")
    p.add_argument("--population", type=int, default=None,
                   help="the variant's population (default: the reference's)")
    p.add_argument("--generations", type=int, default=None,
                   help="the variant's generations (default: the reference's)")
    p.add_argument("--name", default="search_strategies",
                   help="results file benchmarks/results/NAME.json and BENCHMARKS.md section")
    p.add_argument("--reference", default=str(REFERENCE),
                   help="a search_vs_random.py result JSON (seeds and settings come from it)")
    p.add_argument("--seeds", default=None, help="default: the reference's seeds")
    p.add_argument("--write", action="store_true",
                   help="save benchmarks/results/search_strategies.json and BENCHMARKS.md")
    args = p.parse_args()
    try:
        ref = json.loads(Path(args.reference).read_text())
        ref_args = {k: ref["args"][k] for k in SETTINGS}
        known = sorted(r["seed"] for r in ref["runs"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        fail(f"--reference {args.reference}: not a search_vs_random result ({e!r})")
    objectives = tuple(o.strip() for o in args.objectives.split(",") if o.strip())
    try:
        seeds = known if args.seeds is None else [int(s) for s in args.seeds.split(",")]
    except ValueError:
        fail(f"--seeds {args.seeds!r}: give comma-separated integers")
    missing = [s for s in seeds if s not in known]
    if missing:
        fail(f"--seeds {missing} not in the reference (it has {known})")
    shape = {k: v for k, v in (("population", args.population),
                               ("generations", args.generations)) if v is not None}
    runs = []
    for s in seeds:
        try:
            runs.append(run_variant(ref_args, s, objectives, shape))
        except EdgesslError as e:  # bad objectives or settings: refused before any search
            fail(" ".join(str(e).split()))
        print(f"seed {s}: pick {100 * runs[-1]['test_knn']:.2f}% test kNN, "
              f"{runs[-1]['search_seconds']:.0f} s", flush=True)
    if args.write:
        payload = {"command": " ".join(sys.argv), "date": today(), "machine": machine(),
                   "reference": repo_relative(args.reference), "runs": runs}
        atomic_write_text(ROOT / "benchmarks" / "results" / f"{args.name}.json",
                          json.dumps(payload, indent=1) + "\n")
    publish(args.name, summarize(objectives, ref, runs), args.write)


if __name__ == "__main__":
    main()
