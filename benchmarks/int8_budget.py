"""Search under an INT8 latency budget, then measure what the budget promised.

One invocation: ``edgessl search --latency-table TABLE --latency-ms X`` (TABLE an INT8 table of
``edgessl profile --dtype int8``; X by default the median measured latency of the table's own
held-out subnets at the deployment resolution, so the budget binds), then for the ``--members``
Pareto members with the highest predicted latency (the ones closest to X, where a table's
error shows first) ``edgessl export RESULT/pareto/NN.ckpt --onnx --int8`` (inherited weights,
``search --save-pareto``) and one side-by-side ``edgessl bench``
of the INT8 files with the table's threads, batch, clock and runs. Reported per member:
predicted and measured ms and measured / X (goal: at most 1.1). Every command goes through the
CLI and is recorded.

    python benchmarks/int8_budget.py --table latency_tables/T-int8.json [--write]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import machine, publish, repo_relative, today  # noqa: E402
from _runs import command_line, edgessl, fail, last_json  # noqa: E402

from edgessl.cost.latency import LatencyTable  # noqa: E402
from edgessl.errors import BadInput  # noqa: E402

GOAL = 1.1  # measured / budget


def default_budget(table: LatencyTable, resolution: int) -> float:
    """Median measured ms of the table's held-out subnets at ``resolution``."""
    ms = [n["measured"]["median_ms"] for n in table.networks
          if n.get("role") == "validate" and n["arch"].get("resolution") == resolution]
    if not ms:
        fail(f"--table has no held-out subnets at {resolution} px: give --latency-ms")
    return round(statistics.median(ms), 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", required=True, help="an INT8 latency table (edgessl profile)")
    ap.add_argument("--latency-ms", type=float, help="budget (default: see above)")
    ap.add_argument("--budget-mflops", type=float, default=600.0)
    ap.add_argument("--resolution", type=int, default=224, help="deployment resolution")
    ap.add_argument("--members", type=int, default=3, help="Pareto members to measure")
    ap.add_argument("--data", default=None, help="proxy data (default: the search's)")
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--generations", type=int, default=6)
    ap.add_argument("--calib-images", type=int, default=None, help="export --int8 (default: "
                    "the export's)")
    ap.add_argument("--max-drop", type=float, default=1.0, help="export --int8 --max-drop")
    ap.add_argument("--work", default="runs/int8-budget")
    ap.add_argument("--out", default=None, help="result JSON (default: "
                    "benchmarks/results/int8_budget.json)")
    ap.add_argument("--write", action="store_true", help="put the table into BENCHMARKS.md")
    args = ap.parse_args()
    table_path = Path(args.table)
    try:
        table = LatencyTable.load(table_path)
    except BadInput as exc:
        fail(f"--table: {exc}")
    meta = table.meta
    if meta.get("dtype") != "int8":
        fail(f"--table {args.table} is a {meta.get('dtype')!r} table: this check is for INT8")
    if args.members < 1:
        fail(f"--members {args.members} must be at least 1")
    budget = args.latency_ms if args.latency_ms is not None \
        else default_budget(table, args.resolution)
    if budget <= 0:
        fail(f"--latency-ms {budget} must be positive")

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "commands.log"
    t0 = time.time()
    search_dir = work / "search"
    search_cmd = ["search", "--budget-mflops", args.budget_mflops, "--latency-table", table_path,
                  "--latency-ms", budget, "--resolution", args.resolution,
                  "--objectives", "accuracy,latency", "--save-pareto",
                  "--population", args.population, "--generations", args.generations,
                  *(["--data", args.data] if args.data else []), "--out", search_dir, "--json"]
    t = time.time()
    summary = last_json(edgessl(search_cmd, log))
    search_s = time.time() - t
    report = (search_dir / "report.md").read_text()
    pareto = json.loads((search_dir / "pareto.json").read_text())
    members = sorted(pareto, key=lambda m: -m["latency_ms"])[:args.members]

    files, exports = [], []
    for i, m in enumerate(members):
        out = work / f"member{i}"
        cmd = ["export", search_dir / m["checkpoint"], "--onnx", "--int8", "--resolution",
               args.resolution, "--max-drop", args.max_drop, "--out", out,
               *(["--calib-images", args.calib_images] if args.calib_images else [])]
        edgessl(cmd, log)
        exports.append(command_line(cmd))
        files.append(out / "model_int8.onnx")
    timing = meta["timing"]
    bench_cmd = ["bench", files[0], "--backend", meta["backend"], "--threads", meta["threads"],
                 "--batch", meta["batch"], "--resolution", args.resolution,
                 "--clock", meta.get("clock", "auto"),
                 "--runs", timing.get("net_runs", 100), "--rounds", timing.get("rounds", 10),
                 "--warmup", timing.get("warmup", 10), "--json"]
    if len(files) > 1:
        bench_cmd[2:2] = ["--against", ",".join(map(str, files[1:]))]
    bench = last_json(edgessl(bench_cmd, log))
    measured = [r["median_ms"] for r in bench["results"]]
    int8 = [json.loads((work / f"member{i}" / "export.json").read_text())["int8"]
            for i in range(len(members))]
    rows = [{"arch": m["arch"], "mflops": m["mflops"], "proxy": m["score"],
             "predicted_ms": m["latency_ms"], "measured_ms": ms, "measured_over_budget":
             ms / budget, "measured_over_predicted": ms / m["latency_ms"], "export": e,
             "knn_fp32": q["check"]["knn"]["fp32"],
             "knn_int8": q["files"]["model_int8.onnx"]["check"]["knn"]}
            for m, ms, e, q in zip(members, measured, exports, int8, strict=True)]
    result = {"table": repo_relative(table_path), "table_device": meta.get("device"),
              "table_date": meta.get("date"), "dtype": meta["dtype"],
              "latency_ms_budget": budget, "goal_measured_over_budget": GOAL,
              "met": all(r["measured_over_budget"] <= GOAL for r in rows),
              "report_says_int8": "**INT8**" in report, "search": {
                  "command": command_line(search_cmd[:-1]), "seconds": search_s,
                  "pareto_size": summary["pareto_size"], "evaluated": summary["evaluated"]},
              "bench": command_line(bench_cmd[:-1]), "members": rows,
              "command": "python benchmarks/int8_budget.py " + " ".join(sys.argv[1:]),
              "date": today(), "machine": machine(), "seconds": time.time() - t0}
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / "int8_budget.json"
    from edgessl.utils import atomic_write_text

    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    publish("int8_budget", section(result), args.write)


def section(r: dict) -> list[str]:
    """The BENCHMARKS.md section."""
    lines = [f"`{r['command']}` on {r['date']}; {r['machine']}. Table `{r['table']}` "
             f"({r['table_device']}, made {r['table_date']}). Search: `{r['search']['command']}` "
             f"({r['search']['seconds']:.0f} s, {r['search']['evaluated']} evaluated, "
             f"{r['search']['pareto_size']} on the Pareto front; its report states an INT8 "
             f"budget: {'yes' if r['report_says_int8'] else 'NO'}). Each member exported with "
             f"`edgessl export ARCH --onnx --int8`, all timed side by side: `{r['bench']}`.", "",
             "| member | MFLOPs | predicted INT8 ms | measured INT8 ms | measured / budget | "
             "measured / predicted | kNN fp32 -> INT8 |", "|---|---:|---:|---:|---:|---:|---|"]
    for i, m in enumerate(r["members"]):
        lines.append(f"| {i} | {m['mflops']:.0f} | {m['predicted_ms']:.2f} | "
                     f"{m['measured_ms']:.2f} | {m['measured_over_budget']:.3f} | "
                     f"{m['measured_over_predicted']:.3f} | {100 * m['knn_fp32']:.1f}% -> "
                     f"{100 * m['knn_int8']:.1f}% |")
    worst = max(m["measured_over_budget"] for m in r["members"])
    lines += ["", f"Budget {r['latency_ms_budget']:g} ms INT8; goal: every member measured at "
                  f"most {r['goal_measured_over_budget']:g}x the budget: "
                  f"**{'met' if r['met'] else 'missed'}** (worst {worst:.3f}x)."]
    return lines


if __name__ == "__main__":
    main()
