"""Per-scenario search: the same supernet searched once per labelled set, and the cross matrix.

``edgessl search --data A --data B --data C`` loads the supernet once, runs one search per set
(each scored on its own held-out training images, written to ``OUT/<set>/`` exactly as a
single search writes its folder), then evaluates each set's best architecture on every set's
*test* split: kNN and linear probe with inherited weights, BatchNorm re-estimated on the
target set's bank (as ``edgessl study`` does). ``cross.csv`` / ``cross.png`` show whether one
architecture would have served all the sets.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgessl.errors import BadInput
from edgessl.search.proxy import ProxyScorer, prepare_proxy_data
from edgessl.search.results import SearchResult
from edgessl.search.run import SearchConfig, SearchSession
from edgessl.study.report import write_csv, write_json
from edgessl.study.sets import EvalSet, check_distinct, evaluate_on, prepare_sets, set_labels
from edgessl.utils import atomic_write, atomic_write_text

CROSS_BANK = 2000  # labelled train images per set for the cross evaluation (at most)
CROSS_TEST = 2000  # test images per set


@dataclass
class ScenarioResult:
    """One search result per set (by label) and the cross matrix (``cross[metric][i][j]``:
    set i's best architecture on set j's test split; None where set i found nothing)."""

    labels: list[str]
    results: dict[str, SearchResult]
    cross: dict[str, Any]
    interrupted: bool = False


def check_scenarios(datasets: list[str], val_data: str | None) -> None:
    """Refuse a per-scenario search that cannot work (cheap: nothing is loaded)."""
    check_distinct(datasets, "--data")
    if val_data is not None:
        raise BadInput("--val-data names the validation folder of one --data; with several "
                       "--data give each set its own train/ and val/ (or test/) sub-folders")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise BadInput("several --data under torchrun is not supported: run one search per "
                       "set (each may use torchrun), or run this one in a single process")


def _sharing(first: SearchSession, cfg: SearchConfig) -> SearchSession:
    """A session on ``cfg.data`` that shares ``first``'s loaded supernet, latency table,
    constraints and device: only the proxy data and its score cache are its own."""
    session = copy.copy(first)
    session.cfg = cfg
    session.data, session.data_reason = cfg.data, "given"
    data = prepare_proxy_data(cfg.data, first.proxy_res, cfg.bank, cfg.val, seed=cfg.seed,
                              use_labels=cfg.use_labels, pool=cfg.refine_pool)
    session.scorer = ProxyScorer(first.supernet, data, first.device)
    return session


class ScenarioSearch:
    """Validated and loaded: one :class:`SearchSession` per set, sharing one supernet."""

    def __init__(self, base: SearchConfig, datasets: list[str]):
        check_scenarios(datasets, base.val_data)
        self.out = Path(base.out)
        self.labels = set_labels(datasets)
        configs = [replace(base, data=d, out=self.out / label)
                   for d, label in zip(datasets, self.labels, strict=True)]
        first = SearchSession(configs[0])
        # every set labelled, readable and split, before any search runs
        self.sets: list[EvalSet] = prepare_sets(datasets, first.proxy_res, CROSS_BANK,
                                                CROSS_TEST, "--data")
        self.sessions = [first, *[_sharing(first, c) for c in configs[1:]]]
        self.supernet, self.device = first.supernet, first.device

    def run(self, progress: Callable[[dict[str, Any]], None] | None = None) -> ScenarioResult:
        """Search each set in turn, then evaluate the cross matrix and write it. Ctrl-C
        stops the search in progress (its folder is still written) and skips the rest."""
        results: dict[str, SearchResult] = {}
        interrupted = False
        for i, (label, session) in enumerate(zip(self.labels, self.sessions, strict=True)):
            def relay(p: dict, i: int = i, label: str = label) -> None:
                if progress is not None:
                    progress({**p, "scenario": label, "index": i, "scenarios": len(self.labels)})
            results[label] = session.run(relay)
            if results[label].interrupted:
                interrupted = True
                break
        cross = self._cross(results)
        self._write(results, cross, interrupted)
        return ScenarioResult(self.labels, results, cross, interrupted)

    def _cross(self, results: dict[str, SearchResult]) -> dict[str, Any]:
        metrics: dict[str, list] = {"knn": [], "linear": []}
        best = {}
        for label in self.labels:
            res = results.get(label)
            if res is None or res.best is None:
                row = {m: None for m in metrics}
                best[label] = None
            else:
                net = self.supernet.extract(res.best.arch)
                scores = [evaluate_on(net, s, self.device) for s in self.sets]
                row = {m: [sc[m] for sc in scores] for m in metrics}
                best[label] = {"arch": res.best.arch.to_dict(), "name": str(res.best.arch),
                               "mflops": round(res.best.mflops, 3),
                               "proxy_score": round(res.best.score, 6)}
            for m in metrics:
                metrics[m].append(row[m])
        return {"sets": self.labels, "best": best, **metrics,
                "evaluation": f"inherited weights, BatchNorm re-estimated on each target "
                              f"set's bank; bank {CROSS_BANK} and test {CROSS_TEST} images per "
                              f"set (at most), at the proxy resolution"}

    def _write(self, results: dict[str, SearchResult], cross: dict, interrupted: bool) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        rows = []
        for i, label in enumerate(self.labels):
            b = cross["best"][label]
            row = {"searched_on": label, "mflops": b and b["mflops"], "arch": b and b["name"]}
            row.update({t: (cross["knn"][i] or [None] * len(self.labels))[j]
                        for j, t in enumerate(self.labels)})
            rows.append(row)
        write_csv(self.out / "cross.csv", rows, ["searched_on", "mflops", "arch", *self.labels])
        write_json(self.out / "cross.json", {**cross, "interrupted": interrupted})
        plot_cross(self.out / "cross.png", cross)
        write_cross_report(self.out / "report.md", cross, interrupted)


def plot_cross(path: Path, cross: dict[str, Any]) -> None:
    """kNN accuracy of each set's best architecture (rows) on every set (columns), coloured
    by the shortfall from the column's best pick (boxed), so sets of any difficulty compare."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = cross["sets"]
    acc = np.array([[np.nan] * len(labels) if r is None else r for r in cross["knn"]], float)
    best = np.nanmax(acc, axis=0) if np.isfinite(acc).any() else np.zeros(len(labels))
    gap = 100 * (acc - best)  # points below the best pick on that set (0: the best)
    low = min(-1.0, float(np.nanmin(gap))) if np.isfinite(gap).any() else -1.0
    size = 1.5 + 1.0 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size), dpi=120)
    im = ax.imshow(gap, cmap="viridis", vmin=low, vmax=0)
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("evaluated on (test split)")
    ax.set_ylabel("searched on")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if np.isnan(acc[i, j]):
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=8)
                continue
            ax.text(j, i, f"{acc[i, j]:.3f}", ha="center", va="center", fontsize=8,
                    color="black" if gap[i, j] > low / 2 else "white")
            if gap[i, j] == 0:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red",
                                           lw=2))
    fig.colorbar(im, ax=ax, label="kNN points below the best pick on that set")
    ax.set_title("Each set's searched architecture on every set (kNN accuracy)", fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png"))
    plt.close(fig)


def write_cross_report(path: Path, cross: dict[str, Any], interrupted: bool) -> None:
    """report.md of a per-scenario search: each set's pick and the cross matrix."""
    labels = cross["sets"]
    lines = ["# edgessl per-scenario search", ""]
    if interrupted:
        lines += ["**Interrupted**: the sets after the interrupted search were not searched.",
                  ""]
    lines += [f"One search per set (folders {', '.join(f'`{s}/`' for s in labels)}); each "
              f"set's best architecture evaluated on every set: {cross['evaluation']}.", ""]
    for m in ("knn", "linear"):
        lines += [f"## {m} accuracy (rows: searched on; columns: evaluated on)", "",
                  "| searched on | MFLOPs | " + " | ".join(labels) + " |",
                  "|---|---|" + "---|" * len(labels)]
        for i, s in enumerate(labels):
            row, b = cross[m][i], cross["best"][s]
            cells = ["n/a"] * len(labels) if row is None else [f"{v:.4f}" for v in row]
            cost = "n/a" if b is None else f"{b['mflops']:.1f}"
            lines.append(f"| {s} | {cost} | " + " | ".join(cells) + " |")
        lines += [""]
    knn = [r for r in cross["knn"] if r is not None]
    if len(knn) == len(labels):
        acc = np.array(knn)
        own = [int(np.argmax(acc[:, j]) == j) for j in range(len(labels))]
        worst = (acc.max(0) - acc).max(1)  # each pick's largest shortfall over the sets
        i = int(np.argmin(worst))
        lines += [f"On {sum(own)} of {len(labels)} sets the set's own search gave the best kNN "
                  f"accuracy among the searched architectures. The single pick that serves "
                  f"all best is the one searched on {labels[i]}: at most "
                  f"{100 * worst[i]:.1f} points below the best pick on any set.", ""]
    lines += ["Files: `cross.csv` (kNN matrix), `cross.json` (kNN and linear, the picks), "
              "`cross.png`; each set's search in its folder.", ""]
    atomic_write_text(path, "\n".join(lines))
