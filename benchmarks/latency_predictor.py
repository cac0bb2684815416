"""Latency predictor benchmark: time to predict 10,000 archs in-process, and the table's
validation figures per resolution; writes both into BENCHMARKS.md (section latency_predictor).

    python benchmarks/latency_predictor.py [--table latency_tables/NAME.json] [--n 10000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
from _machine import machine, publish, repo_relative, today

from edgessl.cost.latency import LatencyTable
from edgessl.spaces import get_space

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "latency_tables" / "mobilenet-onnxruntime-cpu-xeon-t1-b1-fp32.json"


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
    genes = np.stack([space.encode(a) for a in archs])
    fresh = LatencyTable.load(path)
    t0 = time.perf_counter()
    from_genes = fresh.predict_genes(genes)
    t_genes = time.perf_counter() - t0
    np.testing.assert_allclose(from_genes, cold, rtol=1e-9)
    return {"n": n, "cold_s": t_cold, "warm_s": t_warm, "genes_s": t_genes,
            "min_ms": float(cold.min()), "max_ms": float(cold.max()), "table": table}


def section(r: dict, path: Path, command: str, recheck: Path | None = None) -> list[str]:
    t = r["table"]
    m = t.meta
    lines = [
        "## Latency predictor", "",
        f"Command: `{command}` · date {today()} · machine: {machine()}", "",
        f"Table `{repo_relative(path)}`: "
        f"{m['space']} space, {m['backend']} ({m['backend_version']}), {m['threads']} thread, "
        f"batch {m['batch']}, {m['dtype']}, clock `{m.get('clock')}`, "
        f"{len(t.entries)} entries, measured {m.get('date', '?')} on {m.get('device', '?')}.", "",
        f"**Prediction speed**: {r['n']:,} random archs (all covered resolutions) predicted in "
        f"{r['cold_s']:.3f} s with an empty per-block cache and {r['warm_s']:.3f} s warm "
        f"({r['cold_s'] / r['n'] * 1e6:.1f} / {r['warm_s'] / r['n'] * 1e6:.1f} µs per arch; "
        f"predicted {r['min_ms']:.2f}–{r['max_ms']:.2f} ms); vectorised over gene rows "
        f"(`predict_genes`, cold) {r['genes_s']:.3f} s.", "",
        "**Validation** (held-out random subnets measured end to end with the same backend and "
        "settings; overhead fitted on separate calibration subnets):", "",
        "| resolution | n | within ±10% | within ±5% | MAPE | max APE | Spearman | scale | "
        "per-block ms | offset ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    per = t.validation.get("per_resolution", {})
    for res, v in [*per.items(), ("all", t.validation.get("all"))]:
        if not v:
            continue
        fit = t.overhead.get("per_resolution", {}).get(res) or {}
        sc, pb, off = ((f"{fit['scale']:.3f}", f"{fit.get('per_block_ms', 0):.4f}",
                        f"{fit['offset_ms']:.3f}") if fit else ("–", "–", "–"))
        lines.append(f"| {res} | {v['n']} | {v['within_10pct']:.1%} | {v['within_5pct']:.1%} | "
                     f"{v['mape']:.2%} | {v['max_ape']:.1%} | {v['spearman']:.3f} | {sc} | "
                     f"{pb} | {off} |")
    lines += ["", f"Scatter plot: `{path.with_suffix('.png').name}` next to the table.", ""]
    lines += ablation_lines(path)
    if recheck is not None:
        lines += recheck_lines(t, recheck)
    return lines


def ablation_lines(path: Path) -> list[str]:
    """Validation of the same measurements with parts of the predictor taken out (refitted)."""
    import copy

    import edgessl.profile.validate as validate

    def variant(drop_probes=False, no_per_block=False, global_fit=False, no_fit=False):
        t = LatencyTable.load(path)
        t.networks = copy.deepcopy(t.networks)
        if drop_probes:
            t.entries = {k: v for k, v in t.entries.items() if not k.startswith("probe|")}
        saved = validate.MIN_PER_BLOCK
        validate.MIN_PER_BLOCK = 10**9 if no_per_block else saved
        try:
            validate.finalize(t)
        finally:
            validate.MIN_PER_BLOCK = saved
        if global_fit or no_fit:
            t.overhead = {} if no_fit else {"all": t.overhead["all"]}
            t._cache.clear()
            for n in t.networks:
                from edgessl.arch import Arch

                n["predicted_ms"] = t.predict(Arch.from_dict(n["arch"]))
            val = [n for n in t.networks if n["role"] == "validate"]
            t.validation = {"all": validate.scores(
                np.array([n["predicted_ms"] for n in val]),
                np.array([n["measured"]["median_ms"] for n in val]))}
            for r in {n["arch"]["resolution"] for n in val}:
                sel = [n for n in val if n["arch"]["resolution"] == r]
                t.validation.setdefault("per_resolution", {})[str(r)] = validate.scores(
                    np.array([n["predicted_ms"] for n in sel]),
                    np.array([n["measured"]["median_ms"] for n in sel]))
        return t.validation

    rows = [("as shipped", {}), ("no per-block term", {"no_per_block": True}),
            ("no boundary probes", {"drop_probes": True}),
            ("neither", {"drop_probes": True, "no_per_block": True}),
            ("one fit for all resolutions", {"global_fit": True}),
            ("plain sum of entries (no fit)", {"no_fit": True})]
    lines = ["**Ablation** (same measurements, predictor parts removed and refitted; held-out "
             "subnets):", "",
             "| predictor | within ±10% all | MAPE all | max APE | MAPE 128 | MAPE 224 | "
             "Spearman all |",
             "|---|---|---|---|---|---|---|"]
    for name, kw in rows:
        v = variant(**kw)
        per = v["per_resolution"]
        lines.append(f"| {name} | {v['all']['within_10pct']:.1%} | {v['all']['mape']:.2%} | "
                     f"{v['all']['max_ape']:.1%} | {per['128']['mape']:.2%} | "
                     f"{per['224']['mape']:.2%} | {v['all']['spearman']:.3f} |")
    return [*lines, ""]


def recheck_lines(table: LatencyTable, path: Path) -> list[str]:
    """Scores of the validation subnets in ``path`` (a copy of the table extended later with
    ``edgessl profile --validate 30 --calibrate 0 --seed 1 --out COPY``) that the shipped table
    does not hold: fresh subnets, measured minutes later, against the same entries and fit."""
    from edgessl.profile.validate import scores

    known = {json.dumps(n["arch"], sort_keys=True) for n in table.networks}
    new = [n for n in LatencyTable.load(path).networks
           if n["role"] == "validate" and json.dumps(n["arch"], sort_keys=True) not in known]
    if not new:
        return []
    when = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc)
    lines = [f"**Re-check**: {len(new)} fresh validation subnets (seed 1), measured later "
             f"(finished {when:%Y-%m-%d %H:%M} UTC) against the same entries and fit: `cp TABLE "
             "COPY && edgessl profile --resolution 128 --resolution 160 --resolution 192 "
             "--resolution 224 --validate 30 --calibrate 0 --seed 1 --runs 300 --rounds 10 "
             "--net-runs 100 --net-chunk 120 --pin-cpu 1 --out COPY`:", "",
             "| resolution | n | within ±10% | within ±5% | MAPE | max APE | Spearman |",
             "|---|---|---|---|---|---|---|"]
    for res in [*sorted({n["arch"]["resolution"] for n in new}), "all"]:
        sel = [n for n in new if res == "all" or n["arch"]["resolution"] == res]
        v = scores(np.array([n["predicted_ms"] for n in sel]),
                   np.array([n["measured"]["median_ms"] for n in sel]))
        lines.append(f"| {res} | {v['n']} | {v['within_10pct']:.1%} | {v['within_5pct']:.1%} | "
                     f"{v['mape']:.2%} | {v['max_ape']:.1%} | {v['spearman']:.3f} |")
    return [*lines, ""]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--table", type=Path, default=DEFAULT)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--recheck", type=Path, help="table copy extended with fresh validation "
                   "subnets (see recheck_lines) to report as well")
    args = p.parse_args()
    r = time_predictions(args.table.resolve(), args.n)
    cmd = "python benchmarks/latency_predictor.py" + (
        f" --table {args.table}" if args.table.resolve() != DEFAULT else "") + (
        f" --recheck {args.recheck}" if args.recheck else "")
    publish("latency_predictor", section(r, args.table.resolve(), cmd, args.recheck),
            write=not args.no_write)
    if r["cold_s"] >= 1.0:
        raise SystemExit(f"too slow: {r['cold_s']:.2f} s for {args.n} archs (limit 1 s)")


if __name__ == "__main__":
    main()
