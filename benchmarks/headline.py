"""The headline claim, measured: the searched network against handcrafted ones.

One invocation: ``edgessl search`` (budget ``--budget-mflops`` at 224, the shipped supernet
unless ``--supernet``) picks a network; it is evaluated with its inherited weights, fine-tuned
from them, and retrained from scratch, next to ResNet18, MobileNetV2, MobileNetV3-Large and
ResNet50, every trained network with the same default ``edgessl train`` recipe and the same
budget (images seen), for each seed. Reported per network and seed: kNN and linear-probe
accuracy on Fashion-MNIST's test split, the same network at random init, MFLOPs at the
training resolution and at 224, params, and onnxruntime-CPU latency at 224 measured side by
side in one ``edgessl bench`` run. Resumable: finished runs and evaluations are kept in
``--work``; every command goes through the CLI and is recorded.

    python benchmarks/headline.py --preset cpu      # the committed figures (hours on 2 cores)
    python benchmarks/headline.py --preset gpu      # one H200, about 10 minutes
    python benchmarks/headline.py --preset smoke    # the code path in seconds (tests)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import machine, publish, today  # noqa: E402
from _runs import ResultCache, command_line, edgessl, evaluate, last_json, train_once  # noqa: E402

BASELINES = ("resnet18", "mobilenet_v2", "mobilenet_v3_large", "resnet50")
PRESETS = {
    "smoke": dict(data="digits", search_data="digits", budget_images=128, batch_size=32,
                  resolution=32, seeds=[0], baselines=["mobilenet_v3_small"], bank=500,
                  test=300, population=4, generations=1, extra=["--workers", "0"],
                  bench_runs=5),
    "cpu": dict(data="fashion-mnist", search_data="fashion-mnist-sample",
                budget_images=48000, batch_size=64, resolution=56, seeds=[0, 1],
                baselines=list(BASELINES), bank=10000, test=10000, population=16,
                generations=6, extra=["--workers", "0"], bench_runs=200),
    "gpu": dict(data="fashion-mnist", search_data="fashion-mnist-sample",
                budget_images=1200000, batch_size=512, resolution=96, seeds=[0, 1],
                baselines=list(BASELINES), bank=10000, test=10000, population=16,
                generations=6, extra=["--precision", "bf16", "--device", "cuda"],
                bench_runs=200),
}


def costs(model: str, arch_file: Path, resolution: int) -> dict:
    """MFLOPs at the training resolution and at 224, params (millions)."""
    from edgessl.arch import Arch
    from edgessl.cost.flops import count_macs, model_cost
    from edgessl.models import build_network

    if model.startswith("searched"):
        arch = Arch.load(arch_file)
        c = model_cost(arch)
        at_res = count_macs(build_network(arch, num_classes=1000), resolution) / 1e6
        return {"mflops_train_res": at_res, "mflops_224": c.mflops, "params_m": c.params / 1e6}
    c = model_cost(model)
    return {"mflops_train_res": model_cost(model, resolution).mflops, "mflops_224": c.mflops,
            "params_m": c.params / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    ap.add_argument("--supernet", default=None, help="default: the shipped supernet")
    ap.add_argument("--budget-mflops", type=float, default=600.0)
    ap.add_argument("--budget-images", type=int, help="images per training run (preset)")
    ap.add_argument("--work", default=None, help="default: runs/headline-<preset>")
    ap.add_argument("--out", default=None, help="result JSON (default: "
                    "benchmarks/results/headline.json; smoke: in --work)")
    ap.add_argument("--phase", choices=("all", "baselines"), default="all",
                    help="baselines: only train and evaluate the handcrafted networks (they "
                         "do not need the supernet; a later full run reuses them)")
    ap.add_argument("--write", action="store_true", help="put the table into BENCHMARKS.md")
    args = ap.parse_args()
    p = dict(PRESETS[args.preset])
    if args.budget_images is not None:
        p["budget_images"] = args.budget_images
    work = Path(args.work or f"runs/headline-{args.preset}")
    work.mkdir(parents=True, exist_ok=True)
    log = work / "commands.log"
    cache = ResultCache(work / "results.json")
    t0 = time.time()

    steps = max(1, p["budget_images"] // p["batch_size"])
    recipe = ["--data", p["data"], "--resolution", p["resolution"], "--batch-size",
              p["batch_size"], "--epochs", 1000, "--max-steps", steps, *p["extra"]]
    ev = ["--bank-size", p["bank"], "--test-size", p["test"], "--resolution", p["resolution"]]

    def trained_row(name: str, extra: list, seed: int) -> dict:
        key = f"{name}/seed{seed}"
        row = cache.get(key)
        if row is None:
            out = work / f"{name.replace(' (', '-').rstrip(')')}-s{seed}"
            t = time.time()
            command = train_once([*extra, *recipe, "--seed", seed], out, log)
            seconds = time.time() - t
            trained = evaluate(out / "last.ckpt", p["data"], log, "--protocol", "both", *ev)
            random = evaluate(out / "last.ckpt", p["data"], log, "--protocol", "knn", *ev,
                              "--init", "random", "--seed", seed)
            row = {"network": name, "seed": seed, "knn": trained["knn"],
                   "linear": trained["linear"], "random_init_knn": random["knn"],
                   "command": command, "train_seconds": seconds}
            cache.put(key, row)
        print(f"{key}: kNN {row['knn']:.4f} (random {row['random_init_knn']:.4f}), "
              f"linear {row['linear']:.4f}", flush=True)
        return row

    # the handcrafted networks first: they do not depend on the supernet or the search
    handcrafted = [trained_row(b, ["--space", f"baseline:{b}"], seed)
                   for seed in p["seeds"] for b in p["baselines"]]
    if args.phase == "baselines":
        return

    search_dir = work / "search"
    search_cmd = ["search", "--budget-mflops", args.budget_mflops, "--data", p["search_data"],
                  "--population", p["population"], "--generations", p["generations"],
                  "--out", search_dir, "--json"]
    if args.supernet:
        search_cmd[1:1] = ["--supernet", args.supernet]
    if cache.get("search") is None:
        t = time.time()
        summary = last_json(edgessl(search_cmd, log))
        cache.put("search", {"command": command_line(search_cmd[:-1]), "summary": summary,
                             "seconds": time.time() - t})
    arch_file, best_ckpt = search_dir / "best.arch.json", search_dir / "best.ckpt"
    inherited = cache.get("searched (inherited)")
    if inherited is None:
        trained = evaluate(best_ckpt, p["data"], log, "--protocol", "both", *ev)
        random = evaluate(best_ckpt, p["data"], log, "--protocol", "knn", *ev, "--init",
                          "random")
        inherited = {"network": "searched (inherited)", "seed": None, "knn": trained["knn"],
                     "linear": trained["linear"], "random_init_knn": random["knn"],
                     "command": cache.get("search")["command"], "train_seconds": 0.0}
        cache.put("searched (inherited)", inherited)
    searched = {"searched (retrained)": ["--arch", arch_file],
                "searched (fine-tuned)": ["--arch", arch_file, "--init-from", best_ckpt]}
    rows = [inherited, *(trained_row(n, e, seed) for seed in p["seeds"]
                         for n, e in searched.items()), *handcrafted]

    bench = cache.get("bench")
    if bench is None:
        bench_cmd = ["bench", search_dir, "--against", ",".join(p["baselines"]), "--backend",
                     "onnxruntime-cpu", "--threads", 1, "--batch", 1, "--resolution", 224,
                     "--runs", p["bench_runs"], "--json"]
        result = last_json(edgessl(bench_cmd, log))
        lat = [r["median_ms"] for r in result["results"]]
        bench = {"command": command_line(bench_cmd[:-1]),
                 "latency_ms": {"searched": lat[0], **dict(zip(p["baselines"], lat[1:],
                                                               strict=True))}}
        cache.put("bench", bench)
    for row in rows:
        model = "searched" if row["network"].startswith("searched") else row["network"]
        row.update(costs(row["network"], arch_file, p["resolution"]))
        row["latency_ms"] = bench["latency_ms"][model]

    search = cache.get("search")
    result = {"preset": args.preset, "budget_images": steps * p["batch_size"],
              "resolution": p["resolution"], "data": p["data"], "rows": rows,
              "searched_arch": json.loads(arch_file.read_text()),
              "search": search, "bench": bench,
              "command": "python benchmarks/headline.py " + " ".join(sys.argv[1:]),
              "date": today(), "machine": machine(),
              "hours_this_invocation": (time.time() - t0) / 3600}
    out = Path(args.out) if args.out else (
        work / "headline.json" if args.preset == "smoke"
        else ROOT / "benchmarks" / "results" / "headline.json")
    from edgessl.utils import atomic_write_text

    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    publish("headline", table(result), args.write)


def table(result: dict) -> list[str]:
    """The BENCHMARKS.md section: per network, the mean over seeds and each seed's kNN."""
    by: dict[str, list[dict]] = {}
    for row in result["rows"]:
        by.setdefault(row["network"], []).append(row)
    lines = ["## Headline: searched vs handcrafted on Fashion-MNIST", "",
             f"`{result['command']}` on {result['date']}; {result['machine']}. Every trained "
             f"network: the default `edgessl train` recipe, {result['budget_images']} images "
             f"at {result['resolution']} px; kNN (k=20) and linear probe on frozen features, "
             f"`{result['data']}` test split. Search: `{result['search']['command']}` "
             f"({result['search']['seconds']:.0f} s). Latency: `{result['bench']['command']}`.",
             "", "| network | kNN % (mean; per seed) | linear % | random init kNN % | "
             "MFLOPs @train | MFLOPs @224 | params (M) | ORT-CPU ms @224 | train min |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, rs in by.items():
        mean = lambda k, rs=rs: sum(r[k] for r in rs) / len(rs)  # noqa: E731
        seeds = "; ".join(f"{100 * r['knn']:.2f}" for r in rs)
        r0 = rs[0]
        lines.append(f"| {name} | {100 * mean('knn'):.2f} ({seeds}) | "
                     f"{100 * mean('linear'):.2f} | {100 * mean('random_init_knn'):.2f} | "
                     f"{r0['mflops_train_res']:.1f} | {r0['mflops_224']:.1f} | "
                     f"{r0['params_m']:.2f} | {r0['latency_ms']:.2f} | "
                     f"{mean('train_seconds') / 60:.1f} |")
    return lines + ["", *verdict(by)]


def verdict(by: dict[str, list[dict]]) -> list[str]:
    """The claim, read off the rows: the searched network retrained from scratch (same recipe
    and budget as every handcrafted one) against each handcrafted network, as differences of
    seed means with the seed range, and the cost ratios. "Ahead"/"behind" only when the two
    networks' per-seed kNN ranges do not overlap; otherwise "within seed noise"."""
    ours = by.get("searched (retrained)")
    if not ours:
        return []
    lo, hi = min(r["knn"] for r in ours), max(r["knn"] for r in ours)
    mean = lambda rs, k: sum(r[k] for r in rs) / len(rs)  # noqa: E731
    lines = ["**The claim, read off this table** (searched network retrained from scratch vs "
             "each handcrafted one; differences of seed means, kNN then linear; \"ahead\" or "
             "\"behind\" only where the per-seed kNN ranges do not overlap):", ""]
    for name, rs in by.items():
        if name.startswith("searched"):
            continue
        b_lo, b_hi = min(r["knn"] for r in rs), max(r["knn"] for r in rs)
        word = ("ahead" if lo > b_hi else "behind" if hi < b_lo else "within seed noise")
        d_knn = 100 * (mean(ours, "knn") - mean(rs, "knn"))
        d_lin = 100 * (mean(ours, "linear") - mean(rs, "linear"))
        flops = ours[0]["mflops_224"] / rs[0]["mflops_224"]
        lat = ours[0]["latency_ms"] / rs[0]["latency_ms"]
        lines.append(f"- vs {name}: kNN {d_knn:+.2f}, linear {d_lin:+.2f} points ({word}); "
                     f"{flops:.2f}x its MFLOPs at 224, {lat:.2f}x its latency.")
    return lines


if __name__ == "__main__":
    main()
