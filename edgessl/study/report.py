"""A study's outputs: study.csv, correlations.json, winners.json, heatmap.png, scatter.png,
report.md, each written atomically."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from edgessl.utils import atomic_write, atomic_write_text


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    atomic_write(path, lambda p: fig.savefig(p, format="png"))
    _pyplot().close(fig)


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1) + "\n")


def plot_heatmap(path: Path, matrix: dict[str, Any], title: str) -> None:
    """Kendall's tau between every pair of sets, each cell annotated."""
    plt = _pyplot()
    labels = matrix["sets"]
    tau = np.array([[np.nan if v is None else v for v in row] for row in matrix["tau"]])
    size = 1.2 + 0.9 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size), dpi=120)
    im = ax.imshow(tau, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    for i in range(len(labels)):
        for j in range(len(labels)):
            text = "n/a" if np.isnan(tau[i, j]) else f"{tau[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if abs(np.nan_to_num(tau[i, j])) > 0.6 else "black")
    fig.colorbar(im, ax=ax, label="Kendall's tau")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def plot_scatter(path: Path, x: np.ndarray, ys: dict[str, np.ndarray], mflops: np.ndarray,
                 x_label: str, y_metric: str, taus: dict[str, float | None]) -> None:
    """One panel per set: its accuracy against ``x`` (the pre-training set's), coloured by
    MFLOPs, Kendall's tau in the title."""
    plt = _pyplot()
    n = len(ys)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols + 1, 3.2 * rows), dpi=120,
                             squeeze=False, layout="constrained")
    sc = None
    for ax, (label, y) in zip(axes.flat, ys.items(), strict=False):
        sc = ax.scatter(x, y, c=mflops, s=12, cmap="viridis")
        tau = taus.get(label)
        ax.set_title(f"{label} (tau {'n/a' if tau is None else f'{tau:.2f}'})", fontsize=9)
        ax.set_xlabel(f"{x_label} {y_metric}", fontsize=8)
        ax.set_ylabel(f"{label} {y_metric}", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if sc is not None:
        fig.colorbar(sc, ax=axes.ravel().tolist(), label="MFLOPs")
    _save(fig, path)


def _code(name: str) -> str:
    """A variant name as markdown code inside a table (an Arch's ``|`` escaped)."""
    return "`" + name.replace("|", "\\|") + "`"


def _fmt(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def write_report(path: Path, info: dict[str, Any], corr: dict, wins: dict, primary: str,
                 top: list[dict[str, Any]]) -> None:
    """report.md: settings, the answer (does one variant win everywhere?), correlations."""
    c, w = corr[primary], wins[primary]
    lines = ["# edgessl study report", ""]
    if info.get("interrupted"):
        lines += ["**Interrupted**: the tables cover the variants evaluated so far.", ""]
    lines += [f"- variants: {info['n_variants']} from `{info['variants']}` "
              f"({info['weights']}); MFLOPs {info['mflops_range']}",
              f"- pre-training set: {info['pretrain'] or 'not evaluated'}",
              f"- downstream sets: {', '.join(info['downstream'])}",
              f"- evaluation: {info['evaluation']}",
              f"- primary metric: {primary} accuracy; {info['seconds']:.0f} s on "
              f"{info['world']} process(es)", ""]
    distinct, everywhere = w["distinct_winners"], w["wins_everywhere"]
    if everywhere:
        verdict = (f"**One variant ranks first on every set**: {', '.join(everywhere)}.")
    else:
        verdict = (f"**No variant ranks first on every set**: {len(distinct)} different "
                   f"winners across {len(w['sets'])} sets.")
    lines += ["## Does one network rule them all?", "", verdict, "",
              "| set | winner | MFLOPs | accuracy | its rank on each set |",
              "|---|---|---|---|---|"]
    for s, r in w["per_set"].items():
        ranks = ", ".join(f"{t}: {k}" for t, k in r["rank_on"].items())
        lines.append(f"| {s} | {_code(r['winner'])} | {r['mflops']:.1f} | {_fmt(r['accuracy'])} | "
                     f"{ranks} |")
    lines += [""]
    if c["vs_pretrain"] is not None:
        lines += ["## Pre-training accuracy vs downstream accuracy", "",
                  f"Across variants, against `{c['pretrain']}`:", "",
                  "| set | Pearson | Spearman | Kendall | Kendall p |", "|---|---|---|---|---|"]
        for s, r in c["vs_pretrain"].items():
            lines.append(f"| {s} | {_fmt(r['pearson'])} | {_fmt(r['spearman'])} | "
                         f"{_fmt(r['kendall'])} | {_fmt(r['kendall_p'], 4)} |")
        lines += [""]
    m = c["kendall_matrix"]
    lines += ["## Rank agreement between downstream sets (Kendall's tau)", "",
              "| | " + " | ".join(m["sets"]) + " |", "|---" * (len(m["sets"]) + 1) + "|"]
    for s, row in zip(m["sets"], m["tau"], strict=True):
        lines.append(f"| {s} | " + " | ".join(_fmt(v, 2) for v in row) + " |")
    half = corr.get("knn", {}).get("split_half")
    if half:
        lines += ["", "## Noise ceiling: split-half agreement", "",
                  "Kendall's tau between the variants' kNN accuracies on the even- and the "
                  "odd-numbered test images of the same set: how far the sampling of test "
                  "images alone scrambles a ranking (each half has half the images, so the "
                  "whole set agrees with itself somewhat better). Agreement between two sets "
                  "far below this is real disagreement; near it, it may be noise.", "",
                  "| set | split-half Kendall (kNN) |", "|---|---|"]
        lines += [f"| {s} | {_fmt(r['kendall'])} |" for s, r in half.items()]
    lines += ["", "## Best mean rank", "", "| variant | mean rank |", "|---|---|"]
    lines += [f"| {_code(r['variant'])} | {r['mean_rank']:.2f} |" for r in w["best_mean_rank"]]
    lines += ["", "## Most accurate on average", "", "| variant | MFLOPs | mean accuracy |",
              "|---|---|---|"]
    lines += [f"| {_code(r['variant'])} | {r['mflops']:.1f} | {r['mean']:.4f} |" for r in top]
    lines += ["", "Files: `study.csv` (one row per variant), `correlations.json`, "
              "`winners.json`, `heatmap.png`, `scatter.png`; per-variant results in "
              "`results/`.", ""]
    atomic_write_text(path, "\n".join(lines))
