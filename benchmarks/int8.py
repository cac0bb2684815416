"""INT8 against fp32 on onnxruntime CPU: latency at 224 px and kNN accuracy on Fashion-MNIST,
for the searched network and the five baselines, and where the time goes.

Every network is exported exactly as ``edgessl export SOURCE --onnx --int8`` writes it
(``model.onnx`` and ``model_int8.onnx``, static batch 1, 224 px; calibrated on
``--calib-images`` images of ``--calib-data``), its kNN accuracy (k=20) measured before and
after quantization on Fashion-MNIST's test split (``--test`` images; bank: the first
``--bank`` of the train split) by the export's own accuracy check. Then all 12 files are timed
in ONE interleaved run (batch 1, 1 thread, thread-CPU clock, as latency tables are), and each is
profiled with onnxruntime's profiler to split its time into dense convolutions, depthwise
convolutions, Q/DQ, layout reorders and the rest: why a network gets more or less of VNNI's
4x (int8 vs fp32 multiply-accumulates per instruction).

The baselines carry random-init weights (seed 0, BatchNorm set from digits + noise, as
``edgessl export`` gives a baseline name): their accuracy is that of random features; what
quantization does to it still shows. Exports are kept in ``--work`` and reused on a rerun.

Run: flock /tmp/edgessl-heavy.lock python benchmarks/int8.py --search-result R [--write]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path

from _machine import BENCHMARKS, machine, today, write_section

from edgessl.baselines import BASELINES
from edgessl.deploy.export import export
from edgessl.deploy.int8 import DEFAULT_CALIB_METHOD
from edgessl.deploy.int8_export import ONNX_INT8, Int8Options
from edgessl.runtime.host import cpu_flags
from edgessl.runtime.sessions import OrtSession
from edgessl.runtime.timer import summarize, time_interleaved
from edgessl.utils import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results" / "int8.json"
SECTION = "int8"
VNNI_GAIN = 4.0  # int8 MACs per VNNI instruction (vpdpbusd) vs fp32 per FMA, per lane width


def export_all(sources: dict[str, str], work: Path, args) -> dict[str, dict]:
    """name -> export.json of every network (reused when its settings match)."""
    opts = Int8Options(calib_data=args.calib_data, calib_images=args.calib_images,
                       calib_method=args.calib_method,
                       max_drop=100.0, eval_data=args.eval_data,  # record, never fail
                       eval_images=args.test, eval_bank=args.bank)
    reports = {}
    for name, source in sources.items():
        out = work / name
        old = out / "export.json"
        if old.is_file():
            report = json.loads(old.read_text())
            if (report.get("int8") or {}).get("options") == asdict(opts) \
                    and _same_source(report, source):
                reports[name] = report
                print(f"{name}: reusing {old}", flush=True)
                continue
        print(f"{name}: exporting, quantizing, checking accuracy", flush=True)
        reports[name] = export(source, out, resolution=224, int8=opts)
    return reports


def _same_source(report: dict, source: str) -> bool:
    """Whether an export.json was made from ``source`` (the same checkpoint for a result)."""
    src = report["source"]
    if Path(source).is_dir():
        from edgessl.deploy.sources import RESULT_CKPT, sha256_file

        return src.get("kind") == "result" and src.get("sha256") == sha256_file(
            Path(source) / RESULT_CKPT)
    return report["name"] == source and report["resolution"] == 224


def time_all(files: dict[tuple[str, str], Path], args) -> dict[tuple[str, str], dict]:
    runners = {k: OrtSession(str(p), threads=1) for k, p in files.items()}
    times = time_interleaved(runners, args.runs, args.rounds, args.warmup, "cpu")
    return {k: summarize(v) for k, v in times.items()}


def _category(node) -> str:
    op = node.op_type
    if op in ("Conv", "QLinearConv", "FusedConv"):
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        return "depthwise conv" if group > 1 else "dense conv"
    if op in ("QuantizeLinear", "DequantizeLinear"):
        return "Q/DQ"
    if op in ("ReorderInput", "ReorderOutput", "Transpose"):
        return "layout"
    return "other"


def profile(path: Path, runs: int) -> dict[str, float]:
    """ms per image spent in each category of nodes (onnxruntime's profiler, 1 thread, the
    optimised graph: after fusions such as DQ-Conv-Q -> QLinearConv)."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
        opts.log_severity_level = 3
        opts.optimized_model_filepath = os.path.join(tmp, "opt.onnx")
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(tmp, "prof")
        s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        cats = {n.name: _category(n) for n in onnx.load(opts.optimized_model_filepath).graph.node}
        shape = [d if isinstance(d, int) else 1 for d in s.get_inputs()[0].shape]
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        for _ in range(5 + runs):
            s.run(None, {s.get_inputs()[0].name: x})
        events = json.loads(Path(s.end_profiling()).read_text())
    total: dict[str, float] = collections.Counter()
    seen: dict[str, int] = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            node = e["name"][:-len("_kernel_time")]
            seen[node] += 1
            if seen[node] > 5:  # after the warm-up calls
                total[cats.get(node, "other")] += e["dur"] / 1e3 / runs
    return dict(total)


def depthwise_mac_share(path: Path) -> float:
    """Share of the network's multiply-accumulates in depthwise convolutions."""
    import onnx

    from edgessl.deploy.onnx_flops import COUNTERS, _Graph

    model = onnx.load(str(path))
    g = _Graph(model)
    dw = dense = 0
    for n in model.graph.node:
        if n.op_type in COUNTERS:
            macs = COUNTERS[n.op_type](g, n)
            group = next((a.i for a in n.attribute if a.name == "group"), 1)
            dw, dense = (dw + macs, dense) if group > 1 else (dw, dense + macs)
    return dw / max(dw + dense, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--search-result", required=True, help="an edgessl search result folder")
    ap.add_argument("--work", default="runs/int8-bench", help="exports are kept (and reused)")
    ap.add_argument("--calib-data", default="fashion-mnist")
    ap.add_argument("--calib-images", type=int, default=256)
    ap.add_argument("--calib-method", default=DEFAULT_CALIB_METHOD)
    ap.add_argument("--eval-data", default="fashion-mnist")
    ap.add_argument("--bank", type=int, default=10_000, help="kNN bank (train split head)")
    ap.add_argument("--test", type=int, default=10_000, help="test images (the whole split)")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--profile-runs", type=int, default=20)
    ap.add_argument("--networks", default="searched," + ",".join(BASELINES),
                    help="comma list: searched and baseline names (default: all six)")
    ap.add_argument("--write", action="store_true", help="write BENCHMARKS.md's section")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    chosen = [n.strip() for n in args.networks.split(",") if n.strip()]
    sources = {n: args.search_result if n == "searched" else n for n in chosen}
    work = Path(args.work)
    reports = export_all(sources, work, args)
    files = {(n, p): work / n / f for n in sources
             for p, f in (("fp32", "model.onnx"), ("int8", ONNX_INT8))}
    print(f"timing all {len(files)} files in one interleaved run", flush=True)
    stats = time_all(files, args)
    rows = []
    for name in sources:
        chk = reports[name]["int8"]["check"]
        f = reports[name]["int8"]["files"][ONNX_INT8]["check"]
        fp32, int8 = stats[(name, "fp32")], stats[(name, "int8")]
        prof = {p: profile(files[(name, p)], args.profile_runs) for p in ("fp32", "int8")}
        rows.append({
            "network": name, "model": reports[name]["name"],
            "mflops": reports[name]["macs"]["onnx_mflops"],
            "depthwise_mac_share": depthwise_mac_share(files[(name, "fp32")]),
            "fp32_ms": fp32["median_ms"], "int8_ms": int8["median_ms"],
            "fp32_p10_p90": [fp32["p10_ms"], fp32["p90_ms"]],
            "int8_p10_p90": [int8["p10_ms"], int8["p90_ms"]],
            "speedup": fp32["median_ms"] / int8["median_ms"],
            "knn_fp32": chk["knn"]["fp32"], "knn_int8": f["knn"],
            "drop_points": f["drop_points"], "feature_cosine": f["feature_cosine"],
            "centred_cosine": f["centred_cosine"], "profile_ms": prof})
    first = reports[next(iter(sources))]
    result = {"command": "python benchmarks/int8.py " + " ".join(sys.argv[1:]),
              "date": today(), "machine": machine(), "cpu_flags": _cpu_flags(),
              "settings": {k: v for k, v in vars(args).items() if k != "write"},
              "bank_images": first["int8"]["check"]["bank_images"],
              "test_images": first["int8"]["check"]["test_images"],
              "onnxruntime": first["versions"]["onnxruntime"], "rows": rows}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS, json.dumps(result, indent=1) + "\n")
    text = _markdown(result, args)
    print(text)
    if args.write:
        if f"<!-- section:{SECTION} -->" not in BENCHMARKS.read_text():
            atomic_write_text(BENCHMARKS, BENCHMARKS.read_text().rstrip("\n")
                              + f"\n\n<!-- section:{SECTION} -->\n")
        write_section(SECTION, text)


def _cpu_flags() -> list[str]:
    """The INT8-relevant flags of this CPU (AVX-512, AMX, AVX-VNNI)."""
    return sorted(f for f in cpu_flags() or () if f.startswith(("avx512", "amx", "avx_vnni")))


def _markdown(result: dict, args) -> str:
    s = result["settings"]
    command = result.get("command") or f"python benchmarks/int8.py --search-result " \
        f"{s['search_result']}"
    lines = [
        "## INT8 vs fp32 on onnxruntime CPU (export --int8)",
        "",
        f"Command: `{command}`; date {result['date']}; machine: {result['machine']}; "
        f"onnxruntime {result['onnxruntime']}; INT8-relevant CPU flags: "
        f"{', '.join(result['cpu_flags']) or 'none'} "
        f"({'AMX-INT8 present' if 'amx_int8' in result['cpu_flags'] else 'no AMX'}).",
        "",
        f"Files as `edgessl export SOURCE --onnx --int8` writes them (224 px, static batch 1; "
        f"u8s8 QDQ, per-channel weights, calibrated on {s['calib_images']} {s['calib_data']} "
        f"training images, {s.get('calib_method', 'minmax')}). Latency: all "
        f"{2 * len(result['rows'])} files in one "
        f"interleaved run, batch 1, 1 thread, thread-CPU clock, {s['runs']} runs over "
        f"{s['rounds']} rounds. kNN (k=20) on {s['eval_data']}: {result['test_images']} test "
        f"images, bank {result['bank_images']} "
        "training images, the export's own check. Baselines: random-init weights (their "
        "accuracy is that of random features; the drop still shows what INT8 does to them).",
        "",
        "| network | MFLOPs | dw MACs | fp32 ms | INT8 ms | speedup | of VNNI's 4x "
        "| kNN fp32 | kNN INT8 | drop (points) | centred cosine |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['network']} | {r['mflops']:.0f} | {100 * r['depthwise_mac_share']:.0f}% | "
            f"{r['fp32_ms']:.2f} | {r['int8_ms']:.2f} | {r['speedup']:.2f}x | "
            f"{100 * r['speedup'] / VNNI_GAIN:.0f}% | {100 * r['knn_fp32']:.2f}% | "
            f"{100 * r['knn_int8']:.2f}% | {r['drop_points']:+.2f} | "
            f"{r['centred_cosine']['mean']:.3f} |")
    cats = ("dense conv", "depthwise conv", "Q/DQ", "layout", "other")
    lines += ["", "Where the time goes (onnxruntime profiler, ms per image, fp32 -> INT8; the "
              "profiler adds a few µs per node, so totals exceed the medians above):", "",
              "| network | " + " | ".join(cats) + " |", "|---|" + "---:|" * len(cats)]
    for r in result["rows"]:
        p = r["profile_ms"]
        cells = []
        for c in cats:
            a, b = p["fp32"].get(c, 0.0), p["int8"].get(c, 0.0)
            ratio = f" ({a / b:.1f}x)" if a > 0.05 and b > 0.05 else ""
            cells.append(f"{a:.2f} -> {b:.2f}{ratio}")
        lines.append(f"| {r['network']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
