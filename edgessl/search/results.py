"""Search outputs: Pareto front (JSON, CSV, PNG with baselines marked), best arch, report."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgessl.arch import Arch
from edgessl.utils import atomic_write, atomic_write_text

PROXY_LABELS = {"knn": "kNN vote share", "cka": "CKA with the largest subnet"}  # proxy kind


@dataclass(frozen=True)
class Candidate:
    """One scored, feasible architecture and its costs; ``refined`` is its careful score
    when it was among the candidates the refine step re-scored."""

    arch: Arch
    score: float
    mflops: float
    mparams: float
    latency_ms: float | None = None
    refined: float | None = None

    def row(self) -> dict[str, Any]:
        return {"score": round(self.score, 6), "mflops": round(self.mflops, 3),
                "mparams": round(self.mparams, 4),
                "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 4),
                "refined": None if self.refined is None else round(self.refined, 6),
                "arch": str(self.arch)}


@dataclass
class SearchResult:
    best: Candidate | None
    pareto: list[Candidate]
    candidates: list[Candidate]
    info: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False


def objectives_matrix(cands: list[Candidate], objectives: tuple[str, ...]) -> np.ndarray:
    cols = {"accuracy": [-c.score for c in cands], "mflops": [c.mflops for c in cands],
            "latency": [c.latency_ms or 0.0 for c in cands]}
    return np.array([cols[o] for o in objectives], dtype=float).T.reshape(len(cands), -1)


def _write_csv(path: Path, cands: list[Candidate]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["score", "mflops", "mparams", "latency_ms", "refined",
                                          "arch"])
    w.writeheader()
    for c in cands:
        w.writerow({**c.row(), "arch": c.arch.to_json()})
    atomic_write_text(path, buf.getvalue())


def write_pareto(out: Path, pareto: list[Candidate], checkpoints: list[str] | None = None
                 ) -> None:
    """pareto.json (arch objects; with ``checkpoints``, each member's checkpoint path relative
    to ``out``) and pareto.csv (arch JSON per row)."""
    rows = [{**c.row(), "arch": c.arch.to_dict(),
             **({"checkpoint": checkpoints[i]} if checkpoints else {})}
            for i, c in enumerate(pareto)]
    atomic_write_text(out / "pareto.json", json.dumps(rows, indent=1) + "\n")
    _write_csv(out / "pareto.csv", pareto)


def write_candidates(out: Path, cands: list[Candidate]) -> None:
    """candidates.csv: every scored, feasible candidate."""
    _write_csv(out / "candidates.csv", cands)


def plot_pareto(out: Path, result: SearchResult, x: str, budget: float | None,
                baselines: dict[str, float], score_label: str) -> Path:
    """Proxy score against MFLOPs (or latency): every candidate, the front, the budget line,
    and the handcrafted baselines' costs at the same resolution as labelled vertical marks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def xs(cs):
        return [c.mflops if x == "mflops" else c.latency_ms for c in cs]

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    ax.scatter(xs(result.candidates), [c.score for c in result.candidates], s=10,
               color="0.7", label="evaluated")
    front = sorted(result.pareto, key=lambda c: xs([c])[0])
    ax.plot(xs(front), [c.score for c in front], "o-", color="tab:blue", ms=4,
            label="Pareto front")
    refined = [c for c in result.candidates if c.refined is not None]
    if refined:
        ax.scatter(xs(refined), [c.score for c in refined], s=60, facecolors="none",
                   edgecolors="tab:orange", zorder=4, label="re-scored (refine)")
    if result.best is not None:
        ax.scatter(xs([result.best]), [result.best.score], marker="*", s=180, color="tab:red",
                   zorder=5, label="best")
    if budget is not None:
        ax.axvline(budget, color="tab:red", ls="--", lw=1, label="budget")
    for name, cost in baselines.items():
        ax.axvline(cost, color="tab:green", ls=":", lw=1)
        ax.annotate(name, (cost, 0.02), xycoords=("data", "axes fraction"), rotation=90,
                    fontsize=7, color="tab:green", ha="right", va="bottom")
    dtype = (result.info.get("latency_settings") or {}).get("dtype")
    ax.set_xlabel("MFLOPs (at deployment resolution)" if x == "mflops"
                  else f"predicted {str(dtype).upper() + ' ' if dtype else ''}latency (ms)")
    ax.set_ylabel(score_label)
    ax.set_title("edgessl search: proxy accuracy vs cost")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = out / "pareto.png"
    atomic_write(path, lambda p: fig.savefig(p, format="png"))
    plt.close(fig)
    return path


def _latency_lines(info: dict[str, Any]) -> list[str]:
    """What the latencies (and a latency budget) are: the precision, backend and settings of
    the table, so an INT8 budget is never read as an fp32 one."""
    lat = info.get("latency_settings")
    if not lat:
        return []
    dtype = str(lat.get("dtype") or "fp32").upper()
    budget = (info.get("budget") or {}).get("max_latency_ms")
    what = (f"budget {budget:g} ms of **{dtype}** inference" if budget is not None
            else f"**{dtype}** latencies")
    export = " (`edgessl export --int8`)" if dtype == "INT8" else ""
    return [f"- latency: {what}{export}, predicted by `{info.get('latency_table')}` "
            f"({lat.get('backend')}, {lat.get('threads')} thread(s), batch {lat.get('batch')}, "
            f"{lat.get('device')}); every latency below is {dtype}"]


def _refined(c: Candidate) -> str:
    return "" if c.refined is None else f" (refined {c.refined:.4f})"


def _refine_lines(info: dict[str, Any]) -> list[str]:
    """How the pick was chosen: by the screening score, or after the refine step."""
    ref = info.get("refine")
    if not ref:
        return ["- pick: the candidate with the best screening score (no refine step)"]
    return [f"- refine: the {ref['top']} best candidates by screening score re-scored by kNN "
            f"vote share leave-one-out over {ref['images']} training images; the pick is the "
            "best of them by that refined score"]


def write_report(out: Path, result: SearchResult, pareto_saved: bool = False) -> None:
    info = result.info
    unit = str((info.get("latency_settings") or {}).get("dtype") or "").upper()  # INT8, ...
    lines = ["# edgessl search report", ""]
    if result.interrupted:
        lines += ["**Interrupted**: results below cover the generations completed so far.", ""]
    lines += [f"- space: `{info.get('space')}`, deployment resolution {info.get('resolution')}",
              f"- budget: {info.get('budget')}",
              *_latency_lines(info),
              f"- supernet: `{info.get('supernet')}` (trained with {info.get('ssl')} on "
              f"{info.get('supernet_data')})",
              f"- proxy: {PROXY_LABELS.get(info.get('proxy'), info.get('proxy'))} on "
              f"`{info.get('data')}` "
              f"({info.get('data_reason', 'given')}) at proxy resolution "
              f"{info.get('proxy_resolution')} px (the budget is checked at the deployment "
              "resolution; scoring uses the smaller proxy resolution the supernet was trained "
              "at, since the networks are fully convolutional)",
              f"- evolution: NSGA-II, population {info.get('population')}, "
              f"{info.get('generations_done')}/{info.get('generations')} generations, "
              f"seed {info.get('seed')}; {len(result.candidates)} distinct candidates scored "
              f"in {info.get('seconds', 0):.0f} s on {info.get('world', 1)} process(es)",
              *_refine_lines(info), ""]
    if result.best is not None:
        b = result.best
        lat = "" if b.latency_ms is None else (f", predicted {unit + ' ' if unit else ''}"
                                                f"latency {b.latency_ms:.3f} ms")
        lines += ["## Best", "", f"`{b.arch}`", "",
                  f"score {b.score:.4f}{_refined(b)}, {b.mflops:.1f} MFLOPs, {b.mparams:.2f} M "
                  f"params{lat}", ""]
        held = info.get("held_out")
        if held:
            lines += [f"Held out: kNN accuracy of this network (inherited weights) on "
                      f"`{info.get('data')}`'s test split, {held['test_size']} images the "
                      f"search never looked at (bank: {held['bank_size']} training images): "
                      f"**{100 * held['knn']:.2f}%**.", ""]
    lines += ["## Pareto front", "",
              f"| score | refined | MFLOPs | M params | latency ms"
              f"{' (' + unit + ')' if unit else ''} | arch |",
              "|---|---|---|---|---|---|"]
    for c in sorted(result.pareto, key=lambda c: c.mflops):
        lat = "" if c.latency_ms is None else f"{c.latency_ms:.3f}"
        ref = "" if c.refined is None else f"{c.refined:.4f}"
        lines.append(f"| {c.score:.4f} | {ref} | {c.mflops:.1f} | {c.mparams:.2f} | {lat} | "
                     f"`{c.arch}` |")
    lines += ["", "Files: `best.arch.json`, `best.ckpt` (standalone, inherited weights, BN "
              "re-estimated), `pareto.json`, `pareto.csv`, `pareto.png`, `candidates.csv`"
              + (", `pareto/NN.ckpt` (every member in `pareto.json`'s order, as `best.ckpt`: "
                 "`edgessl export RESULT/pareto/02.ckpt --onnx`)" if pareto_saved else "")
              + ".", ""]
    atomic_write_text(out / "report.md", "\n".join(lines))
