"""The headline comparison: a searched <=600-MFLOPs architecture against ResNet18, MobileNetV2
and ResNet50 on Fashion-MNIST, every network trained with the same SSL recipe and budget.

All networks are trained and evaluated at one input resolution (default 32 px: the 28 px
images upsampled; the largest resolution these 2 CPU cores can afford for four standalone runs,
and one that keeps every network's stride-32 feature map at least 1x1). Costs are reported at
that resolution and at 224, latency with onnxruntime on CPU at 224 (the deployment setting).

Run:  python benchmarks/headline.py --supernet runs/fm/last.ckpt --steps 150 --write
(without --supernet it first trains one with --supernet-minutes of budget).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _machine import machine, today, write_section

BASELINES = ("resnet18", "mobilenet_v2", "resnet50")


def edgessl(*args: str, log: Path) -> str:
    """Run one edgessl command as a user would; stdout back, everything logged."""
    cmd = [sys.executable, "-m", "edgessl", *map(str, args)]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    with log.open("a") as f:
        f.write(f"$ edgessl {' '.join(map(str, args))}  ({time.time() - t0:.0f} s, "
                f"rc {p.returncode})\n{p.stderr[-3000:]}\n")
    if p.returncode != 0:
        raise SystemExit(f"edgessl {' '.join(map(str, args))} failed:\n{p.stderr[-3000:]}")
    return p.stdout


def last_json(text: str) -> dict:
    return json.loads([line for line in text.splitlines() if line.startswith("{")][-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--supernet", help="Fashion-MNIST supernet checkpoint (edgessl train)")
    ap.add_argument("--supernet-minutes", type=float, default=20)
    ap.add_argument("--work", default="runs/headline")
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--steps", type=int, default=150, help="standalone SSL steps, every net")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--ssl", default="simclr")
    ap.add_argument("--optimizer", default="adamw")
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--reuse", action="store_true",
                    help="keep finished runs in --work whose recipe matches (resume a benchmark)")
    ap.add_argument("--budget-mflops", type=float, default=600)
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--generations", type=int, default=6)
    ap.add_argument("--bank-size", type=int, default=10000)
    ap.add_argument("--test-size", type=int, default=10000)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "commands.log"
    t_start = time.time()
    supernet = args.supernet
    if supernet is None:
        edgessl("train", "--data", "fashion-mnist", "--ssl", args.ssl, "--resolution",
                args.resolution, "--time-limit", args.supernet_minutes * 60, "--epochs", 100,
                "--out", work / "supernet", "--json", log=log)
        supernet = str(work / "supernet" / "last.ckpt")
    search_dir = work / "search"
    if not (args.reuse and (search_dir / "best.arch.json").exists()):
        edgessl("search", "--supernet", supernet, "--data", "fashion-mnist", "--budget-mflops",
            args.budget_mflops, "--resolution", 224, "--population", args.population,
                "--generations", args.generations, "--out", search_dir, "--json", log=log)
    recipe = ["--data", "fashion-mnist", "--ssl", args.ssl, "--resolution", args.resolution,
              "--max-steps", args.steps, "--epochs", 1000, "--batch-size", args.batch_size,
              "--optimizer", args.optimizer, "--lr", args.lr, "--json"]
    wanted = {"ssl": args.ssl, "optimizer": args.optimizer, "lr_used": args.lr,
              "max_steps": args.steps, "batch_size": args.batch_size,
              "resolution_used": args.resolution}
    runs = {"searched (retrained)": ["--arch", search_dir / "best.arch.json"]}
    runs.update({b: ["--space", f"baseline:{b}"] for b in BASELINES})
    ckpts = {"searched (inherited)": search_dir / "best.ckpt"}
    seconds = {}
    for name, extra in runs.items():
        out = work / name.split()[0]
        ckpts[name] = out / "last.ckpt"
        if args.reuse and (out / "config.json").exists() and (out / "last.ckpt").exists():
            done = json.loads((out / "config.json").read_text())
            if all(done.get(k) == v for k, v in wanted.items()):
                continue
        if out.exists():
            shutil.rmtree(out)
        t0 = time.time()
        edgessl("train", *recipe, *extra, "--out", out, log=log)
        seconds[name] = time.time() - t0
    evals = {}
    for name, ckpt in ckpts.items():
        evals[name] = last_json(edgessl(
            "eval", ckpt, "--data", "fashion-mnist", "--protocol", "both", "--resolution",
            args.resolution, "--bank-size", args.bank_size, "--test-size", args.test_size,
            "--json", log=log))
    # costs at the training resolution and at 224


    from edgessl.arch import Arch
    from edgessl.cost.flops import count_macs, model_cost
    from edgessl.models import build_network

    best = Arch.load(search_dir / "best.arch.json")
    costs = {}
    for name in ckpts:
        if name.startswith("searched"):
            net = build_network(best, num_classes=1000)
            c224 = model_cost(best)
            costs[name] = (count_macs(net, args.resolution) / 1e6, c224.mflops, c224.params)
        else:
            costs[name] = (model_cost(name, args.resolution).mflops, model_cost(name).mflops,
                           model_cost(name).params)
    bench = last_json(edgessl("bench", search_dir, "--against", ",".join(BASELINES),
                              "--backend", "onnxruntime-cpu", "--threads", 1, "--resolution",
                              224, "--json", log=log))
    rows = bench["results"]
    lat = {"searched (inherited)": rows[0]["median_ms"],
           "searched (retrained)": rows[0]["median_ms"]}
    lat.update({name: row["median_ms"] for name, row in zip(BASELINES, rows[1:], strict=True)})
    lines = [
        "## Headline: searched vs handcrafted on Fashion-MNIST", "",
        f"`python benchmarks/headline.py {' '.join(sys.argv[1:])}` on {today()}; {machine()}; "
        f"{(time.time() - t_start) / 60:.0f} min in all. Every network: SSL `{args.ssl}`, "
        f"{args.optimizer} lr {args.lr:g}, {args.steps} steps of batch {args.batch_size} at "
        f"{args.resolution} px (same recipe, "
        f"same budget); kNN (k=20, cosine) and linear probe on frozen features, bank = "
        f"{args.bank_size} labelled train images, accuracy on {args.test_size} test images. "
        f"Searched arch: `{best}` (supernet `{supernet}`, budget {args.budget_mflops:g} "
        "MFLOPs at 224). Latency: onnxruntime CPU, 1 thread, batch 1, 224 px, one run side "
        "by side.", "",
        f"| network | kNN % | linear % | MFLOPs @{args.resolution} | MFLOPs @224 | params (M) "
        "| ORT-CPU ms @224 | train s |", "|---|---|---|---|---|---|---|---|"]
    for name in ckpts:
        e, c = evals[name], costs[name]
        ms = lat.get(name)
        lines.append(f"| {name} | {100 * e['knn']:.2f} | {100 * e['linear']:.2f} | {c[0]:.1f} | "
                     f"{c[1]:.1f} | {c[2] / 1e6:.2f} | {'' if ms is None else f'{ms:.2f}'} | "
                     f"{seconds.get(name, 0):.0f} |")
    text = "\n".join(lines)
    (work / "headline.md").write_text(text + "\n")
    (work / "headline.json").write_text(json.dumps({"evals": evals, "costs": costs,
                                                    "latency_ms": lat}, indent=1))
    print(text)
    if args.write:
        write_section("headline", text)


if __name__ == "__main__":
    main()
