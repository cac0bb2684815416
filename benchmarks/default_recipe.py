"""Does the default ``edgessl train`` recipe learn on digits? Trained vs random init, 3 seeds.

Runs ``edgessl train --data digits --epochs 5 --seed S`` (no other option: the default
objective, resolution, crops and flips) for each seed, then ``edgessl eval`` of the largest and
the smallest subnet, trained and at random init (drawn with the same seed), on digits' fixed
held-out split. The acceptance: each subnet >= its random init + 2 kNN points, every seed.

    python benchmarks/default_recipe.py --write
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import machine, publish, today  # noqa: E402
from _runs import ResultCache, evaluate, train_once  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="digits")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--work", default="runs/default-recipe")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    log, cache = work / "commands.log", ResultCache(work / "results.json")
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        key = f"{args.data}/e{args.epochs}/s{seed}"
        row = cache.get(key)
        if row is None:
            out = work / f"{args.data}-e{args.epochs}-s{seed}"
            command = train_once(["--data", args.data, "--epochs", args.epochs, "--seed", seed],
                                 out, log)
            row = {"seed": seed, "command": command}
            for arch in ("largest", "smallest"):
                for init in ("trained", "random"):
                    r = evaluate(out / "last.ckpt", args.data, log, "--arch", arch,
                                 "--protocol", "knn", "--init", init, "--seed", seed)
                    row[f"{arch}_{init}"] = r["knn"]
            cache.put(key, row)
        rows.append(row)
    lines = [f"`python benchmarks/default_recipe.py {' '.join(sys.argv[1:])}` on {today()}; "
             f"{machine()}. Each row: `{rows[0]['command'].rsplit(' --out', 1)[0]}` with its "
             "seed, then `edgessl eval --protocol knn` of each subnet, trained and at random "
             "init (same seed), on the fixed held-out split.", "",
             "| seed | largest trained | largest random | gain | smallest trained | "
             "smallest random | gain |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        gl = 100 * (r["largest_trained"] - r["largest_random"])
        gs = 100 * (r["smallest_trained"] - r["smallest_random"])
        lines.append(f"| {r['seed']} | {100 * r['largest_trained']:.2f} | "
                     f"{100 * r['largest_random']:.2f} | {gl:+.2f} | "
                     f"{100 * r['smallest_trained']:.2f} | {100 * r['smallest_random']:.2f} | "
                     f"{gs:+.2f} |")
    from edgessl.utils import atomic_write_text

    atomic_write_text(ROOT / "benchmarks" / "results" / f"default_recipe-{args.data}.json",
                      json.dumps({"date": today(), "machine": machine(), "rows": rows},
                                 indent=1) + "\n")
    publish(f"default_recipe_{args.data}", lines, args.write)


if __name__ == "__main__":
    main()
