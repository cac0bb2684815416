"""onnxruntime-CPU vs PyTorch-eager latency of the exported networks, measured side by side.

Models: mobilenet_v2, resnet18, resnet50 and a ~600-MFLOPs arch of the mobilenet space (the
largest one at or below 600 MFLOPs at 224 found by seeded sampling + mutation). All 8
(model, runtime) runners are timed in the same interleaved rounds, so the ratios come from one
run. Random-init weights (latency does not depend on them), batch 1, 224 px.

Run: flock /tmp/edgessl-heavy.lock python benchmarks/export_latency.py [--runs 40] [--write]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
from _machine import machine, today, write_section

from edgessl.arch import Arch
from edgessl.deploy import bench as dbench
from edgessl.spaces import get_space

BASELINES = ("mobilenet_v2", "resnet18", "resnet50")
RUNTIMES = ("onnxruntime-cpu", "torch-cpu")


def arch_near(budget: float = 600.0, seed: int = 0, samples: int = 3000,
              steps: int = 3000) -> Arch:
    """The largest mobilenet-space arch at 224 with MFLOPs <= ``budget`` that seeded sampling
    followed by mutation hill-climbing finds (MFLOPs include the 1000-class classifier)."""
    space = get_space("mobilenet")
    rng = np.random.default_rng(seed)
    best, best_m = None, -1.0
    for _ in range(samples):
        a = space.sample(rng, 224)
        m = space.mflops(a)
        if best_m < m <= budget:
            best, best_m = a, m
    for _ in range(steps):
        a = space.mutate(best, rng, 0.1)
        m = space.mflops(a)
        if best_m < m <= budget:
            best, best_m = a, m
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write", action="store_true", help="write the figures into BENCHMARKS.md")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    arch = arch_near()
    with tempfile.TemporaryDirectory() as tmp:
        arch_file = Path(tmp) / "arch600.json"
        arch.save(arch_file)
        names = [*BASELINES, str(arch_file)]
        cfg = dbench.BenchConfig(batch=1, threads=args.threads, resolution=224,
                                 workdir=Path(tmp))
        runners = {}
        for name in names:
            target = dbench.resolve_target(name, 224)
            for rt in RUNTIMES:
                runners[(name, rt)] = dbench.prepare(dbench.get_backend(rt), target, cfg)
        times = dbench.time_interleaved(runners, args.runs, args.runs, args.warmup, "wall")
    stats = {k: dbench.summarize(t) for k, t in times.items()}
    space = get_space("mobilenet")
    label = {str(arch_file): f"mobilenet-space {space.mflops(arch):.0f} MFLOPs"}
    rows = []
    for name in names:
        ort, pt = stats[(name, "onnxruntime-cpu")], stats[(name, "torch-cpu")]
        rows.append({"model": label.get(name, name), "ort_median_ms": ort["median_ms"],
                     "ort_p90_ms": ort["p90_ms"], "torch_median_ms": pt["median_ms"],
                     "torch_p90_ms": pt["p90_ms"],
                     "torch_over_ort": pt["median_ms"] / ort["median_ms"]})
    ref = rows[0]["ort_median_ms"]
    for r in rows:
        r["ort_vs_mobilenet_v2"] = r["ort_median_ms"] / ref
    result = {"arch": arch.to_dict(), "arch_str": str(arch), "runs": args.runs,
              "warmup": args.warmup, "threads": args.threads, "rows": rows}
    print(json.dumps(result, indent=2))
    if args.write:
        write_section("export_latency", _markdown(result, args))


def _markdown(result: dict, args) -> str:
    lines = [
        "## Export latency: onnxruntime CPU vs PyTorch eager",
        "",
        f"Command: `flock /tmp/edgessl-heavy.lock python benchmarks/export_latency.py "
        f"--runs {args.runs} --threads {args.threads} --write`; date {today()}; "
        f"machine: {machine()}.",
        "",
        f"Batch 1, 224 px, {args.threads} thread(s), {args.warmup} warm-up + {args.runs} timed "
        "rounds; all 8 runners interleaved in the same rounds, so ratios come from one run. "
        "The onnxruntime models are the static-batch ONNX files `edgessl export` writes.",
        "",
        "| model | ORT median ms | ORT p90 ms | torch median ms | torch p90 ms "
        "| torch / ORT | ORT vs mobilenet_v2 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['model']} | {r['ort_median_ms']:.2f} | {r['ort_p90_ms']:.2f} | "
                     f"{r['torch_median_ms']:.2f} | {r['torch_p90_ms']:.2f} | "
                     f"{r['torch_over_ort']:.2f}x | {r['ort_vs_mobilenet_v2']:.2f}x |")
    lines += ["", f"The 600-MFLOPs arch: `{result['arch_str']}` (MFLOPs with the 1000-class "
                  "classifier, the project convention)."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
