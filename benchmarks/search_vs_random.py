"""Does the search earn its keep? Its pick against random subnets under the same budget.

For one labelled evaluation set and each seed:
1. draw ``--n-random`` subnets uniformly among those that meet the budget (rejection sampling
   of uniform genes at the deployment resolution), and score each twice: as ``edgessl search``
   scores it (the proxy, on held-out *training* images of ``--proxy-data``) and on the
   evaluation set's *test* split (kNN with inherited, BN-re-estimated weights);
2. run ``edgessl search`` with the same budget and seed, and evaluate its pick on the test
   split the same way;
3. the baselines of equal cost: random search (as many uniformly drawn feasible subnets as the
   evolution scored, the best by proxy kept) and the trivial strategy, the largest network
   under the budget (most MFLOPs among 20,000 feasible draws).

Reports, per seed and as the median over seeds: the pick's percentile among the random
subnets (share of them it beats on the test split), Spearman(proxy, test) over the random
subnets, and the test kNN of the pick, the random-search pick and the largest feasible network.
Raw results go to ``benchmarks/results/search_vs_random-<name>.json``.

    python benchmarks/search_vs_random.py --data fashion-mnist            # the default search
    python benchmarks/search_vs_random.py --data /path/to/folder --proxy-data /path/to/folder
    python benchmarks/search_vs_random.py --jobs 2      # seeds in parallel, one thread each
    python benchmarks/search_vs_random.py --resume      # keep the seeds a killed run finished
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import machine, publish, today  # noqa: E402
from _runs import fail  # noqa: E402

from edgessl.errors import EdgesslError  # noqa: E402
from edgessl.evaluate import evaluate_backbone  # noqa: E402
from edgessl.search import SearchConfig  # noqa: E402
from edgessl.search.run import SearchSession  # noqa: E402
from edgessl.utils import atomic_write_text  # noqa: E402


def uniform_feasible(constraints, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct gene rows drawn uniformly among the feasible ones (rejection sampling)."""
    sizes = np.array(constraints.space.gene_sizes())
    res = constraints.space.resolutions.index(constraints.resolution)
    rows: dict[bytes, np.ndarray] = {}
    while len(rows) < n:
        batch = rng.integers(0, sizes, size=(4096, len(sizes)))
        batch[:, 0] = res
        for g in batch[constraints.feasible(batch)]:
            rows.setdefault(g.tobytes(), g)
    return np.stack(list(rows.values())[:n])


def largest_feasible(constraints, rng: np.random.Generator, draws: int = 20000) -> np.ndarray:
    """The feasible row with the most MFLOPs among ``draws`` uniform feasible ones: the
    trivial "biggest network that fits" strategy."""
    genes = uniform_feasible(constraints, draws, rng)
    return genes[int(np.argmax(constraints.measure(genes)["mflops"]))]


def test_knn(session: SearchSession, arch, data: str, bank: int, test: int) -> float:
    """kNN accuracy on ``data``'s test split with inherited weights (BN re-estimated on the
    bank images, as ``edgessl eval`` does)."""
    net = session.supernet.extract(arch)
    r = evaluate_backbone(net, data, session.proxy_res, "knn", bank, test, session.device)
    return float(r["knn"])


def search_config(settings: dict, seed: int, out: Path, **extra) -> SearchConfig:
    """The search that ``settings`` (this script's SETTINGS, as its results record them)
    describe, for ``seed``; ``extra``: other SearchConfig fields (a variant's objectives,
    population, ...), which replace the recorded ones."""
    base = {"out": out, "max_mflops": settings["budget"], "supernet": settings["supernet"],
            "data": settings["proxy_data"], "seed": seed, "population": settings["population"],
            "generations": settings["generations"], "refine": settings["refine"]}
    return SearchConfig(**{**base, **extra})


def run_seed(args, seed: int) -> dict:
    cfg = search_config(vars(args), seed, Path(tempfile.mkdtemp(prefix=f"svr{seed}-")))
    t0 = time.time()
    session = SearchSession(cfg)
    result = session.run()
    search_s = time.time() - t0
    space, cons = session.space, session.constraints
    rng = np.random.default_rng(1000 + seed)
    rand = [space.decode(g) for g in uniform_feasible(cons, args.n_random, rng)]
    scorer = session.scorer
    screen = [scorer.score(a) for a in rand]
    refine = scorer.pool_size > 0  # 0 with --refine 0 or unlabelled data
    proxy = [scorer.refine(a) for a in rand] if refine else screen
    tests = [test_knn(session, a, args.data, args.bank, args.test) for a in rand]
    evaluations = len(result.candidates)
    pool = [space.decode(g) for g in uniform_feasible(cons, evaluations, rng)]
    ranked = sorted(pool, key=scorer.score, reverse=True)  # stable: ties keep draw order
    # the same two steps as the search: screen all, then refine the best few
    rs_pick = max(ranked[:cfg.refine], key=scorer.refine) if refine else ranked[0]
    big = space.decode(largest_feasible(cons, rng))
    picks = {"search": result.best.arch, "random_search": rs_pick, "largest_feasible": big}
    pick_test = {k: test_knn(session, a, args.data, args.bank, args.test)
                 for k, a in picks.items()}
    mflops = {k: space.mflops(a) for k, a in picks.items()}
    beats = float(np.mean(np.array(tests) < pick_test["search"]))
    rho = float(spearmanr(proxy, tests).statistic)
    rho_screen = float(spearmanr(screen, tests).statistic)
    print(f"seed {seed}: pick beats {100 * beats:.0f}% of {len(rand)} random subnets, "
          f"Spearman(proxy, test) {rho:.2f} (screening score alone {rho_screen:.2f}), "
          f"{time.time() - t0:.0f} s", flush=True)
    final = scorer.refine if refine else scorer.score
    return {"seed": seed, "search_seconds": round(search_s, 1), "evaluations": evaluations,
            "percentile": beats, "spearman_proxy_test": rho,
            "spearman_screen_test": rho_screen,
            "refine": {"top": cfg.refine, "images": scorer.pool_size} if refine else None,
            "test_knn": pick_test, "mflops": mflops,
            "proxy": {k: final(a) for k, a in picks.items()},
            "random_percentile": {k: float(np.mean(np.array(tests) < v))
                                  for k, v in pick_test.items()},
            "archs": {k: a.to_dict() for k, a in picks.items()},
            "random": [{"arch": a.to_dict(), "mflops": space.mflops(a), "proxy": p,
                        "screen": q, "test_knn": t}
                       for a, p, q, t in zip(rand, proxy, screen, tests, strict=True)],
            "proxy_kind": session.scorer.kind, "proxy_resolution": session.proxy_res}


SETTINGS = ("data", "proxy_data", "supernet", "budget", "n_random", "population",
            "generations", "refine", "bank", "test")  # what a finished seed's result depends on


def _seed_file(args, seed: int) -> Path:
    return Path(args.work) / f"seed{seed}.json"


def _settings(args) -> dict:
    return {k: getattr(args, k) for k in SETTINGS}


def _finished(args, seed: int) -> dict | None:
    """With ``--resume``: the seed's result from an earlier run with the same settings."""
    path = _seed_file(args, seed)
    if not args.resume or not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
    except ValueError:
        return None
    if saved.get("settings") != _settings(args):
        return None
    print(f"seed {seed}: reused from {path}", flush=True)
    return saved["run"]


def _seed_job(job: tuple[argparse.Namespace, int]) -> dict:
    """One seed (in a worker process with ``--jobs``: on one thread), saved to ``--work`` as
    soon as it is done, so a killed run resumes with ``--resume``."""
    import torch

    args, seed = job
    if args.jobs > 1:
        torch.set_num_threads(1)
    run = _finished(args, seed)
    if run is None:
        run = run_seed(args, seed)
        path = _seed_file(args, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"settings": _settings(args), "run": run}) + "\n")
    return run


def _proxy_words(run: dict) -> str:
    ref = run.get("refine")
    if not ref:
        return "the screening score (no refine step)"
    return (f"the refine step's score (kNN vote share, leave-one-out over {ref['images']} "
            f"training images), which picks among the {ref['top']} best by screening score")


def summarize(name: str, args, runs: list[dict]) -> list[str]:
    med = lambda key: float(np.median([r[key] for r in runs]))  # noqa: E731
    medk = lambda k: float(np.median([r["test_knn"][k] for r in runs]))  # noqa: E731
    lines = [f"### {name}", "",
             f"Command: `python benchmarks/search_vs_random.py {' '.join(sys.argv[1:])}`  ",
             f"Date: {today()}; machine: {machine()}.  ",
             f"Budget {args.budget:g} MFLOPs at 224; proxy on `{args.proxy_data}` (train split, "
             f"{runs[0]['proxy_kind']} at {runs[0]['proxy_resolution']} px); test kNN on "
             f"`{args.data}` (bank {args.bank}, test {args.test}); {args.n_random} random "
             f"feasible subnets per seed.", "",
             f"Proxy: {_proxy_words(runs[0])}.", "",
             "| seed | pick beats (of random) | Spearman(proxy, test) | Spearman(screening "
             "score, test) | pick kNN | random-search pick | largest feasible | evaluations | "
             "search s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in runs:
        t = r["test_knn"]
        lines.append(
            f"| {r['seed']} | {100 * r['percentile']:.0f}% | {r['spearman_proxy_test']:.2f} | "
            f"{r['spearman_screen_test']:.2f} | "
            f"{100 * t['search']:.2f} ({r['mflops']['search']:.0f} MF) | "
            f"{100 * t['random_search']:.2f} ({r['mflops']['random_search']:.0f} MF) | "
            f"{100 * t['largest_feasible']:.2f} ({r['mflops']['largest_feasible']:.0f} MF) | "
            f"{r['evaluations']} | {r['search_seconds']:.0f} |")
    lines += [f"| median | {100 * med('percentile'):.0f}% | {med('spearman_proxy_test'):.2f} | "
              f"{med('spearman_screen_test'):.2f} | "
              f"{100 * medk('search'):.2f} | {100 * medk('random_search'):.2f} | "
              f"{100 * medk('largest_feasible'):.2f} | | |", ""]
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="fashion-mnist", help="labelled set whose test split "
                   "judges the picks")
    p.add_argument("--proxy-data", default="fashion-mnist-sample",
                   help="what the search scores on (default: the built-in default search's)")
    p.add_argument("--supernet", default=None, help="default: the shipped supernet")
    p.add_argument("--budget", type=float, default=600.0)
    p.add_argument("--n-random", type=int, default=24)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--population", type=int, default=SearchConfig.population)
    p.add_argument("--generations", type=int, default=SearchConfig.generations)
    p.add_argument("--refine", type=int, default=SearchConfig.refine,
                   help="the search's --refine (0: pick by the screening score alone)")
    p.add_argument("--bank", type=int, default=10000)
    p.add_argument("--test", type=int, default=10000)
    p.add_argument("--name", default=None, help="result name (default: from --data)")
    p.add_argument("--jobs", type=int, default=1,
                   help="seeds run in parallel processes of one thread each")
    p.add_argument("--work", default=None,
                   help="per-seed results (default: runs/search_vs_random/NAME)")
    p.add_argument("--resume", action="store_true",
                   help="reuse the seeds --work already holds for the same settings")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args()
    if args.n_random < 2:
        fail(f"--n-random {args.n_random} must be at least 2")
    if args.refine < 0:
        fail(f"--refine {args.refine} must be at least 0")
    if args.jobs < 1:
        fail(f"--jobs {args.jobs} must be at least 1")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    name = args.name or Path(args.data).name
    args.work = args.work or str(ROOT / "runs" / "search_vs_random" / name)
    try:  # a bad budget or supernet is refused by the first search, before any scoring
        if args.jobs > 1 and len(seeds) > 1:
            with multiprocessing.get_context("spawn").Pool(min(args.jobs, len(seeds))) as pool:
                runs = pool.map(_seed_job, [(args, s) for s in seeds])
        else:
            runs = [_seed_job((args, s)) for s in seeds]
    except EdgesslError as e:
        fail(" ".join(str(e).split()))
    payload = {"name": name, "command": " ".join(sys.argv), "date": today(),
               "machine": machine(), "args": vars(args), "runs": runs}
    if not args.no_write:
        atomic_write_text(ROOT / "benchmarks" / "results" / f"search_vs_random-{name}.json",
                          json.dumps(payload, indent=1) + "\n")
    publish(f"search_vs_random_{name}", summarize(f"Search vs random: {name}", args, runs),
            False)


if __name__ == "__main__":
    main()
