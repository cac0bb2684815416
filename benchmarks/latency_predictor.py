"""Latency predictor benchmark: time to predict 10,000 archs in-process, and the table's
validation figures per resolution; writes both into BENCHMARKS.md (section latency_predictor).

    python benchmarks/latency_predictor.py [--table latency_tables/NAME.json] [--n 10000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import re
import subprocess
import time
from pathlib import Path

import numpy as np

from edgessl.cost.latency import LatencyTable
from edgessl.spaces import get_space

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "latency_tables" / "mobilenet-onnxruntime-cpu-xeon-t1-b1-fp32.json"
MARKER = "<!-- section:latency_predictor -->"


def machine() -> str:
    cpu = platform.processor()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return f"{cpu}, nproc={nproc}"


def time_predictions(path: Path, n: int, seed: int = 0) -> dict:
    table = LatencyTable.load(path)
    space = get_space(table.space)
    rng = np.random.default_rng(seed)
    archs = [space.sample(rng, int(rng.choice(table.meta["resolutions"]))) for _ in range(n)]
    fresh = LatencyTable.load(path)  # empty per-block cache: the first call a search makes
    t0 = time.perf_counter()
    cold = fresh.predict_many(archs)
    t_cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    warm = fresh.predict_many(archs)
    t_warm = time.perf_counter() - t0
    assert np.array_equal(cold, warm)
    return {"n": n, "cold_s": t_cold, "warm_s": t_warm, "min_ms": float(cold.min()),
            "max_ms": float(cold.max()), "table": table}


def section(r: dict, path: Path, command: str) -> str:
    t = r["table"]
    m = t.meta
    lines = [
        MARKER, "",
        f"Command: `{command}` · date {dt.date.today().isoformat()} · machine: {machine()}", "",
        f"Table `{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}`: "
        f"{m['space']} space, {m['backend']} ({m['backend_version']}), {m['threads']} thread, "
        f"batch {m['batch']}, {m['dtype']}, clock `{m.get('clock')}`, "
        f"{len(t.entries)} entries, measured {m.get('date', '?')} on {m.get('device', '?')}.", "",
        f"**Prediction speed**: {r['n']:,} random archs (all covered resolutions) predicted in "
        f"{r['cold_s']:.3f} s with an empty per-block cache and {r['warm_s']:.3f} s warm "
        f"({r['cold_s'] / r['n'] * 1e6:.1f} / {r['warm_s'] / r['n'] * 1e6:.1f} µs per arch; "
        f"predicted {r['min_ms']:.2f}–{r['max_ms']:.2f} ms).", "",
        "**Validation** (held-out random subnets measured end to end with the same backend and "
        "settings; overhead fitted on separate calibration subnets):", "",
        "| resolution | n | within ±10% | within ±5% | MAPE | max APE | Spearman | scale | "
        "offset ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    per = t.validation.get("per_resolution", {})
    for res, v in [*per.items(), ("all", t.validation.get("all"))]:
        if not v:
            continue
        fit = t.overhead.get("per_resolution", {}).get(res) or {}
        sc = f"{fit['scale']:.3f}" if fit else "–"
        off = f"{fit['offset_ms']:.3f}" if fit else "–"
        lines.append(f"| {res} | {v['n']} | {v['within_10pct']:.1%} | {v['within_5pct']:.1%} | "
                     f"{v['mape']:.2%} | {v['max_ape']:.1%} | {v['spearman']:.3f} | {sc} | "
                     f"{off} |")
    lines += ["", f"Scatter plot: `{path.with_suffix('.png').name}` next to the table.", ""]
    return "\n".join(lines)


def write_section(text: str, bench: Path = ROOT / "BENCHMARKS.md") -> None:
    """Replace what follows our marker (up to the next section marker) with ``text``."""
    from edgessl.utils import atomic_write_text

    doc = bench.read_text()
    pattern = re.compile(re.escape(MARKER) + r".*?(?=<!-- section:|\Z)", re.S)
    atomic_write_text(bench, pattern.sub(lambda _: text + "\n", doc, count=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--table", type=Path, default=DEFAULT)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--no-write", action="store_true", help="print only")
    args = p.parse_args()
    r = time_predictions(args.table.resolve(), args.n)
    cmd = "python benchmarks/latency_predictor.py" + (
        f" --table {args.table}" if args.table.resolve() != DEFAULT else "")
    text = section(r, args.table.resolve(), cmd)
    print(text)
    if not args.no_write:
        write_section(text)
    if r["cold_s"] >= 1.0:
        raise SystemExit(f"too slow: {r['cold_s']:.2f} s for {args.n} archs (limit 1 s)")


if __name__ == "__main__":
    main()
