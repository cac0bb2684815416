"""Ranking fidelity of the supernet: do inherited weights rank subnets as training them does?

The standard test of a weight-sharing supernet (BossNAS reports Kendall's tau 0.65 on an
ImageNet MBConv space). ``--n`` subnets of the space, stratified over the MFLOPs range that
meets the budget at 224 (the smallest network included), are each

(a) scored as ``edgessl search`` scores them (the proxy: inherited weights, BN re-estimated,
    kNN on held-out *training* images of the search's data),
(b) evaluated with inherited weights on the test split (``edgessl eval``'s kNN),
(c) trained standalone from scratch with the default ``edgessl train`` recipe and one fixed
    budget (the same number of images for every subnet), then evaluated the same way, next to
    the same network at random init.

Reports Kendall's tau and Spearman between (a) or (b) and (c), the same for MFLOPs (the naive
"bigger is better" predictor), and the mean gap between inherited and standalone accuracy.
Resumable: finished standalone runs and evaluations are kept in ``--work`` (a killed run
continues with ``--resume``); every standalone run goes through the CLI, its command recorded.

    python benchmarks/ranking.py --preset cpu          # the committed figures (hours on 2 cores)
    python benchmarks/ranking.py --preset gpu          # one H200, about 10 minutes
    python benchmarks/ranking.py --preset smoke        # the code path in seconds (tests)
    python benchmarks/ranking.py --reproduce subnet00  # re-run one recorded command, compare
    python benchmarks/ranking.py --reproduce subnet00 --reseed 1  # the same with seed 1:
                                                       # the reference's seed-to-seed noise
    python benchmarks/ranking.py --rescore --supernet runs/new/last.ckpt  # another supernet
                                                       # (or proxy) against the same references
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import machine, publish, repo_relative, today  # noqa: E402
from _runs import ResultCache, edgessl, evaluate, fail, logged_hours, train_once  # noqa: E402

# name -> settings; every key is also a command-line option
PRESETS = {
    "smoke": dict(data="digits", proxy_data="digits", n=3, budget_images=256,
                  batch_size=32, resolution=32, bank=500, test=300, extra=["--workers", "0"]),
    "cpu": dict(data="fashion-mnist", proxy_data="fashion-mnist-sample", n=12,
                budget_images=38400, batch_size=64, resolution=48, bank=10000, test=10000,
                extra=["--workers", "0"]),
    "gpu": dict(data="fashion-mnist", proxy_data="fashion-mnist-sample", n=12,
                budget_images=600000, batch_size=512, resolution=64, bank=10000, test=10000,
                extra=["--precision", "bf16", "--device", "cuda"]),
}


def stratified(constraints, n: int, seed: int) -> list:
    """The smallest network plus ``n - 1`` feasible subnets, one from each MFLOPs quantile
    bin of 20,000 uniform feasible draws (the drawn one nearest the bin's centre)."""
    from search_vs_random import uniform_feasible

    space = constraints.space
    genes = uniform_feasible(constraints, 20000, np.random.default_rng(seed))
    mflops = constraints.measure(genes)["mflops"]
    edges = np.quantile(mflops, np.linspace(0, 1, n))
    centres = (edges[:-1] + edges[1:]) / 2
    picks = [space.smallest(constraints.resolution)]
    for c in centres:
        picks.append(space.decode(genes[int(np.argmin(np.abs(mflops - c)))]))
    return picks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    ap.add_argument("--supernet", default=None, help="default: the shipped supernet")
    ap.add_argument("--budget-mflops", type=float, default=600.0)
    ap.add_argument("--n", type=int, help="subnets (preset)")
    ap.add_argument("--budget-images", type=int, help="images per standalone run (preset)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=None, help="default: runs/ranking-<preset>")
    ap.add_argument("--out", default=None,
                    help="result JSON (default: benchmarks/results/ranking.json; smoke: in --work)")
    ap.add_argument("--write", action="store_true", help="put the table into BENCHMARKS.md")
    ap.add_argument("--rescore", action="store_true",
                    help="re-score the proxy and inherited columns of the finished subnets with "
                         "--supernet and today's proxy; the standalone references are kept "
                         "(they do not depend on the supernet), so no training runs")
    ap.add_argument("--reproduce", metavar="KEY", default=None,
                    help="re-run the recorded training command of a finished subnet (e.g. "
                         "subnet00) into a new folder, evaluate it the same way, record both")
    ap.add_argument("--reseed", type=int, default=None, metavar="S",
                    help="with --reproduce: change the run's --seed to S too (the difference "
                         "is then seed noise, the floor of any ranking this benchmark shows)")
    args = ap.parse_args()
    if args.reseed is not None and not args.reproduce:
        fail(f"--reseed {args.reseed} needs --reproduce KEY")
    if args.reseed is not None and args.reseed < 0:
        fail(f"--reseed {args.reseed} must be a seed >= 0")
    p = dict(PRESETS[args.preset])
    for key in ("n", "budget_images"):
        if getattr(args, key) is not None:
            p[key] = getattr(args, key)
    if p["n"] < 3:
        ap.error(f"--n {p['n']} must be at least 3")
    work = Path(args.work or f"runs/ranking-{args.preset}")
    work.mkdir(parents=True, exist_ok=True)
    log = work / "commands.log"
    cache = ResultCache(work / "results.json")
    t0 = time.time()
    if args.reproduce:
        row = cache.get(args.reproduce)
        if row is None:
            fail(f"--reproduce {args.reproduce}: no finished subnet of that name in {work}")
        # its own file: a running benchmark rewrites results.json
        reproduce(row, args.reproduce, ResultCache(work / "reproduce.json"), work, log, p,
                  args.reseed)
        return

    from edgessl.evaluate import evaluate_backbone
    from edgessl.search import SearchConfig
    from edgessl.search.run import SearchSession

    session = SearchSession(SearchConfig(out=work / "search", max_mflops=args.budget_mflops,
                                         supernet=args.supernet, data=p["proxy_data"],
                                         seed=args.seed))
    archs = stratified(session.constraints, p["n"], args.seed)
    steps = max(1, p["budget_images"] // p["batch_size"])
    recipe = ["--data", p["data"], "--resolution", p["resolution"], "--batch-size",
              p["batch_size"], "--epochs", 1000, "--max-steps", steps, "--seed", args.seed,
              *p["extra"]]
    def inherited_knn(arch) -> float:
        net = session.supernet.extract(arch)
        return evaluate_backbone(net, p["data"], session.proxy_res, "knn", p["bank"], p["test"],
                                 session.device)["knn"]

    def refined(arch) -> dict:
        """The refine step's score (what picks the search's result), where the data allows."""
        return {"refined": session.scorer.refine(arch)} if session.scorer.pool_size else {}

    rows = []
    for i, arch in enumerate(archs):
        key = f"subnet{i:02d}"
        row = cache.get(key)
        if row is not None and row["arch"] == arch.to_dict() and args.rescore:
            row = {**row, "proxy": session.scorer.score(arch), "inherited_knn": inherited_knn(arch),
                   **refined(arch)}
            cache.put(key, row)
        elif row is None or row["arch"] != arch.to_dict():
            arch_file = work / f"{key}.arch.json"
            arch.save(arch_file)
            inherited = inherited_knn(arch)
            command = train_once(["--arch", arch_file, *recipe], work / key, log)
            ev = knn_args(p)
            trained = evaluate(work / key / "last.ckpt", p["data"], log, *ev)
            random = evaluate(work / key / "last.ckpt", p["data"], log, *ev, "--init", "random",
                              "--seed", args.seed)
            row = {"arch": arch.to_dict(), "mflops": session.space.mflops(arch),
                   "proxy": session.scorer.score(arch), **refined(arch),
                   "inherited_knn": inherited,
                   "standalone_knn": trained["knn"], "random_init_knn": random["knn"],
                   "command": command}
            cache.put(key, row)
        rows.append(row)
        print(f"{key}: {row['mflops']:.0f} MFLOPs, proxy {row['proxy']:.4f}, inherited "
              f"{row['inherited_knn']:.4f}, standalone {row['standalone_knn']:.4f} "
              f"(random init {row['random_init_knn']:.4f})", flush=True)

    col = {k: np.array([r[k] for r in rows]) for k in
           ("mflops", "proxy", "inherited_knn", "standalone_knn", "random_init_knn")}
    ref = col["standalone_knn"]

    def corr(x: np.ndarray) -> tuple[float, float]:
        return float(kendalltau(x, ref).statistic), float(spearmanr(x, ref).statistic)

    (kp, sp), (ki, si), (km, sm) = corr(col["proxy"]), corr(col["inherited_knn"]), \
        corr(col["mflops"])
    kr, sr = (corr(np.array([r["refined"] for r in rows])) if all("refined" in r for r in rows)
              else (None, None))
    gains = col["standalone_knn"] - col["random_init_knn"]
    repro = ResultCache(work / "reproduce.json")  # read last: --reproduce may run meanwhile
    reproductions = [v for _, v in sorted(repro.data.items())]
    result = {"preset": args.preset, "kendall_proxy": kp, "spearman_proxy": sp,
              "kendall_refined": kr, "spearman_refined": sr, "kendall_inherited": ki,
              "spearman_inherited": si, "kendall_mflops": km,
              "spearman_mflops": sm, "budget_images": steps * p["batch_size"],
              "mean_gap_inherited_minus_standalone": float(np.mean(
                  col["inherited_knn"] - ref)),
              "min_gain_over_random_init": float(gains.min()), "subnets": rows,
              "reproductions": reproductions, "seed_noise": seed_noise(reproductions),
              "standalone_range": float(ref.max() - ref.min()),
              "supernet": repo_relative(session.sinfo.get("path")), "data": p["data"],
              "proxy_data": p["proxy_data"], "resolution": p["resolution"],
              "command": "python benchmarks/ranking.py " + " ".join(sys.argv[1:]),
              "date": today(), "machine": machine(), "hours": (time.time() - t0) / 3600,
              "command_hours": logged_hours(log)}
    gap_key = "mean_gap_inherited_minus_standalone"
    out = Path(args.out) if args.out else (
        work / "ranking.json" if args.preset == "smoke"
        else ROOT / "benchmarks" / "results" / "ranking.json")
    from edgessl.utils import atomic_write_text

    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    lines = ["## Ranking fidelity: inherited weights vs standalone training", "",
             f"`{result['command']}` on {today()}; {machine()}; cost "
             f"{result['command_hours']:.2f} h of `edgessl` commands (each with its duration "
             f"in the run's `commands.log`), {result['hours']:.2f} h this invocation. "
             f"Supernet `{result['supernet']}`; {len(rows)} subnets "
             f"stratified over <= {args.budget_mflops:g} MFLOPs at 224; standalone: default "
             f"recipe, {result['budget_images']} images each at {p['resolution']} px; kNN on "
             f"`{p['data']}` (bank {p['bank']}, test {p['test']}).", "",
             "| predictor of standalone kNN | Kendall tau | Spearman |", "|---|---|---|",
             f"| proxy (as the search screens) | {kp:.2f} | {sp:.2f} |",
             *([] if kr is None else [f"| refine score (as the search picks) | {kr:.2f} | "
                                      f"{sr:.2f} |"]),
             f"| inherited weights, test split | {ki:.2f} | {si:.2f} |",
             f"| MFLOPs (bigger is better) | {km:.2f} | {sm:.2f} |", "",
             f"Mean gap inherited - standalone: {100 * result[gap_key]:+.2f} points; "
             f"smallest standalone gain over random init: {100 * gains.min():+.2f} "
             "points.", "",
             *([] if result["seed_noise"] is None else [
                 f"Seed noise of the reference: {100 * result['seed_noise']:.2f} points (mean "
                 "|standalone kNN, seed 0 - another seed| over the re-seeded runs below), "
                 f"against a {100 * result['standalone_range']:.2f}-point range of standalone "
                 "kNN across the subnets.", ""]),
             "| MFLOPs | proxy | inherited kNN | standalone kNN | random init |",
             "|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: r["mflops"]):
        lines.append(f"| {r['mflops']:.0f} | {100 * r['proxy']:.2f} | "
                     f"{100 * r['inherited_knn']:.2f} | {100 * r['standalone_knn']:.2f} | "
                     f"{100 * r['random_init_knn']:.2f} |")
    for r in reproductions:
        what = ("recorded command" if r.get("reseed") is None
                else f"recorded command with seed {r['reseed']}")
        lines.append(f"\nRe-run of {r['key']}'s {what} (`{r['rerun_command']}`): "
                     f"standalone kNN {100 * r['standalone_knn']:.2f} -> "
                     f"{100 * r['rerun_knn']:.2f} ({100 * r['difference']:+.2f} points).")
    publish("ranking", lines, args.write)


def seed_noise(reproductions: list[dict]) -> float | None:
    """Mean absolute kNN difference between a standalone run and its re-run with another
    seed; None without such re-runs."""
    diffs = [abs(r["difference"]) for r in reproductions if r.get("reseed") is not None]
    return float(np.mean(diffs)) if diffs else None


def knn_args(p: dict) -> list:
    """The ``edgessl eval`` options every standalone network is scored with."""
    return ["--protocol", "knn", "--bank-size", p["bank"], "--test-size", p["test"]]


def reproduce(row: dict, key: str, repro: ResultCache, work: Path, log: Path,
              p: dict, reseed: int | None = None) -> None:
    """Issue 16, acceptance 2: run ``key``'s recorded ``edgessl train`` command again with
    only ``--out`` changed (and ``--seed`` when ``reseed`` is given), evaluate it as the
    benchmark did, keep both figures."""
    args = shlex.split(row["command"])[1:]
    arch_file = Path(args[args.index("--arch") + 1])
    if not arch_file.is_file():  # a checkout that kept only the results: the row has the arch
        from edgessl import spaces  # noqa: F401  (registers what an Arch is checked against)
        from edgessl.arch import Arch

        Arch.from_dict(row["arch"]).save(arch_file)
    name = key if reseed is None else f"{key}-seed{reseed}"
    out = work / f"repro-{name}"
    args[args.index("--out") + 1] = str(out)
    if reseed is not None:
        args[args.index("--seed") + 1] = str(reseed)
    if not (out / "last.ckpt").is_file():
        edgessl(args, log)
    knn = evaluate(out / "last.ckpt", p["data"], log, *knn_args(p))["knn"]
    result = {"key": key, "reseed": reseed, "command": row["command"], "rerun_command": "edgessl " +
              shlex.join(args), "standalone_knn": row["standalone_knn"], "rerun_knn": knn,
              "difference": knn - row["standalone_knn"], "date": today(), "machine": machine()}
    repro.put(name, result)
    print(f"{name}: standalone {row['standalone_knn']:.4f}, re-run {knn:.4f} "
          f"({100 * result['difference']:+.2f} points)", flush=True)


if __name__ == "__main__":
    main()
