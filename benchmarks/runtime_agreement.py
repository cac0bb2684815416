"""Issue 20 acceptance 2: ``edgessl bench FILE.onnx`` and ``edgessl profile --check`` timing the
same file agree within 2%, measured side by side.

For the fresh subnets ``profile --check`` picks (its seed and tag), this makes each command's
session the way the command makes it: the check's (export the subnet as ``edgessl export``
does, keep the file, load it: :func:`edgessl.profile.measure.subnet_session`) and bench's (resolve
that kept file as a MODEL argument and load it: :func:`edgessl.deploy.bench.prepare`), then
times all of them in the same interleaved rounds of the one timer with the table's timing, so
machine load hits both sides alike (on this shared machine, thread-CPU time of the same file
drifted by 25% between two runs a few minutes apart: only a side-by-side run can show 2%).
Repeated ``--repeats`` times; writes benchmarks/results/runtime_agreement.json and
(``--write``) the BENCHMARKS.md section ``runtime_agreement``.

    OMP_NUM_THREADS=1 python benchmarks/runtime_agreement.py [--subnets 3] [--repeats 5] [--write]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _machine import machine, today
from recalibrate import TABLE, save

from edgessl.cost.latency import LatencyTable
from edgessl.deploy import bench as dbench
from edgessl.profile.check import TAG_CHECK, fresh_archs
from edgessl.profile.measure import subnet_session
from edgessl.runtime.timer import summarize, time_interleaved

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "runtime_agreement.json"
SECTION = "runtime_agreement"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", type=Path, default=TABLE)
    ap.add_argument("--subnets", type=int, default=3, help="per resolution (128 and 224)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1, help="the check's default seed")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default: one per timed run, "
                                               "the finest interleaving)")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    table = LatencyTable.load(args.table)
    m, t = table.meta, table.meta["timing"]
    backend = dbench.get_backend(table.backend)
    archs = fresh_archs(table, {128: args.subnets, 224: args.subnets}, args.seed, TAG_CHECK)
    checks, benches = {}, {}
    with tempfile.TemporaryDirectory(prefix="edgessl-agree-") as tmp:
        folder = Path(tmp)
        for i, arch in enumerate(archs):
            name = f"{i:04d}"
            checks[f"check {name}"] = subnet_session(backend, arch, m["batch"], m["threads"],
                                                     m["dtype"], folder, name, keep=True)
            target = dbench.resolve_target(str(folder / f"{name}.onnx"))
            cfg = dbench.BenchConfig(m["batch"], m["threads"], arch.resolution, folder)
            benches[f"bench {name}"] = dbench.prepare(backend, target, cfg)
        # all checks, then all benches: in the rotating rounds each session then follows
        # another network (check i right before bench i would warm bench i's kernels)
        sessions = {**checks, **benches}
        rounds = args.rounds or t["net_runs"]
        time_interleaved(sessions, t["net_runs"], rounds, t["warmup"], m["clock"])  # warm-up
        medians: dict[str, list[float]] = {k: [] for k in sessions}
        for _ in range(args.repeats):
            times = time_interleaved(sessions, t["net_runs"], rounds, t["warmup"], m["clock"])
            for key, samples in times.items():
                medians[key].append(summarize(samples)["median_ms"])
    rows = []
    for i, arch in enumerate(archs):
        c, b = medians[f"check {i:04d}"], medians[f"bench {i:04d}"]
        ratios = [y / x for x, y in zip(c, b, strict=True)]  # one per side-by-side repeat
        rows.append({"file": f"{i:04d}.onnx", "resolution": arch.resolution, "arch": str(arch),
                     "check_ms": c, "bench_ms": b, "ratios": [round(x, 4) for x in ratios],
                     "bench_over_check": round(float(np.median(ratios)), 4),
                     "ratio_of_medians": round(float(np.median(b) / np.median(c)), 4)})
    ratios = np.array([r["bench_over_check"] for r in rows])
    result = {"date": today(), "machine": machine(), "table": str(args.table.relative_to(ROOT)),
              "timing": {**t, "rounds": rounds, "clock": m["clock"], "threads": m["threads"]},
              "repeats": args.repeats, "rows": rows,
              "max_abs_deviation": round(float(np.max(np.abs(ratios - 1))), 4),
              "median_ratio": round(float(np.median(ratios)), 4),
              "max_abs_deviation_ratio_of_medians": round(float(np.max(np.abs(np.array(
                  [r["ratio_of_medians"] for r in rows]) - 1))), 4)}
    save(RESULTS, result, SECTION, markdown(result, args), args.write)


def markdown(r: dict, args) -> str:
    t = r["timing"]
    met = r["max_abs_deviation"] <= 0.02
    rounds_arg = f" --rounds {args.rounds}" if args.rounds else ""
    lines = [
        "## One runtime: `edgessl bench` and `edgessl profile --check` on the same files", "",
        f"Command: `OMP_NUM_THREADS=1 python benchmarks/runtime_agreement.py --subnets "
        f"{args.subnets} --repeats {args.repeats}{rounds_arg} --write` on {r['date']}; "
        f"{r['machine']}; raw results in `benchmarks/results/runtime_agreement.json`.", "",
        f"{len(r['rows'])} fresh subnets that `profile --check` picks (table `{r['table']}`), "
        "each loaded twice: as the check loads the file it exports, and as `edgessl bench "
        "FILE.onnx` loads that same file; all sessions timed in the same interleaved rounds "
        f"({t['net_runs']} runs over {t['rounds']} rounds, {t['warmup']} warm-up, "
        f"{t['threads']} thread, `{t['clock']}` clock), {r['repeats']} times after one untimed "
        "pass. bench / check = median over the repeats of the ratio within each repeat (a "
        "paired comparison); the ratio of the two sides' medians over all repeats is shown "
        "too.", "",
        "| file | px | check ms | bench ms | bench / check | ratio of medians |",
        "|---|---|---|---|---|---|",
        *[f"| {x['file']} | {x['resolution']} | {np.median(x['check_ms']):.3f} | "
          f"{np.median(x['bench_ms']):.3f} | {x['bench_over_check']:.3f} | "
          f"{x['ratio_of_medians']:.3f} |" for x in r["rows"]],
        "",
        f"Largest deviation {r['max_abs_deviation']:.1%} (median ratio "
        f"{r['median_ratio']:.3f}; ratio of medians: up to "
        f"{r['max_abs_deviation_ratio_of_medians']:.1%}): goal (within 2%) "
        f"**{'met' if met else 'missed'}**. Both sides are the same file in the same kind of "
        "session, so the deviation is this shared machine's noise floor.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
