"""How a population's rankings agree across sets, and which variant wins where.

Correlations are over variants (scipy.stats): Pearson, Spearman and Kendall's tau-b with
their two-sided p-values, undefined (None) with fewer than three variants or a set on which
every variant scores the same. Ranks: 1 is the most accurate; tied variants share the best
rank. A set's winner is its most accurate variant (ties: fewer MFLOPs, then name).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import stats


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 6)


def correlation(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Pearson, Spearman and Kendall between two accuracy vectors (p-values beside)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    out: dict[str, Any] = {"n": len(x)}
    defined = len(x) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0
    for name, fn in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr),
                     ("kendall", stats.kendalltau)):
        if defined:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r, p = fn(x, y)
            out[name], out[f"{name}_p"] = _num(r), _num(p)
        else:
            out[name] = out[f"{name}_p"] = None
    return out


def ranks(values: np.ndarray) -> np.ndarray:
    """1 = the highest value; ties share the best (smallest) rank."""
    return stats.rankdata(-np.asarray(values, dtype=float), method="min").astype(int)


def kendall_matrix(acc: dict[str, np.ndarray], labels: list[str]) -> dict[str, Any]:
    """Kendall's tau (and p) between every pair of ``labels`` (1 on the diagonal)."""
    tau = [[1.0 if a == b else correlation(acc[a], acc[b])["kendall"] for b in labels]
           for a in labels]
    p = [[0.0 if a == b else correlation(acc[a], acc[b])["kendall_p"] for b in labels]
         for a in labels]
    return {"sets": labels, "tau": tau, "p": p}


def best_index(values: np.ndarray, mflops: np.ndarray, names: list[str]) -> int:
    """The most accurate variant; ties go to fewer MFLOPs, then to the name."""
    order = sorted(range(len(names)), key=lambda i: (-values[i], mflops[i], names[i]))
    return order[0]


def winners(names: list[str], mflops: np.ndarray, acc: dict[str, np.ndarray],
            labels: list[str]) -> dict[str, Any]:
    """Each set's winner, its accuracy, and its rank and shortfall (best accuracy there
    minus its own) on every set; the variants ranked first on every set (often none)."""
    rank = {s: ranks(acc[s]) for s in labels}
    per_set = {}
    for s in labels:
        i = best_index(acc[s], mflops, names)
        per_set[s] = {"winner": names[i], "mflops": round(float(mflops[i]), 3),
                      "accuracy": _num(acc[s][i]),
                      "rank_on": {t: int(rank[t][i]) for t in labels},
                      "shortfall_on": {t: _num(acc[t].max() - acc[t][i]) for t in labels}}
    everywhere = [names[i] for i in range(len(names)) if all(rank[s][i] == 1 for s in labels)]
    mean_rank = np.mean([rank[s] for s in labels], axis=0)
    top = sorted(range(len(names)), key=lambda i: (mean_rank[i], mflops[i], names[i]))[:5]
    distinct = sorted({per_set[s]["winner"] for s in labels})
    return {"n_variants": len(names), "sets": labels, "per_set": per_set,
            "distinct_winners": distinct, "wins_everywhere": everywhere,
            "best_mean_rank": [{"variant": names[i], "mean_rank": round(float(mean_rank[i]), 3)}
                               for i in top]}


def analyse(names: list[str], mflops: np.ndarray, acc: dict[str, dict[str, np.ndarray]],
            pretrain: str | None, downstream: list[str],
            halves: dict[str, np.ndarray] | None = None) -> tuple[dict, dict]:
    """(correlations, winners) per metric: ``acc[metric][set label]`` holds one accuracy per
    variant; ``pretrain`` labels the pre-training set's accuracies (None: not evaluated).
    ``halves[set label]`` (variants x 2: kNN accuracy on each half of the test images)
    gives each set's split-half agreement, the rank agreement that test-image sampling
    alone leaves (how high a correlation between sets could be, roughly)."""
    labels = ([pretrain] if pretrain is not None and pretrain not in downstream else []) \
        + downstream
    corr, wins = {}, {}
    for metric, by_set in acc.items():
        corr[metric] = {
            "n_variants": len(names), "pretrain": pretrain,
            "vs_pretrain": ({s: correlation(by_set[pretrain], by_set[s]) for s in downstream}
                            if pretrain is not None else None),
            "kendall_matrix": kendall_matrix(by_set, downstream),
        }
        wins[metric] = winners(names, mflops, by_set, labels)
    if halves and "knn" in corr:
        corr["knn"]["split_half"] = {s: correlation(h[:, 0], h[:, 1]) for s, h in halves.items()}
    return corr, wins
