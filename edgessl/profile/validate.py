"""Fit the overhead term on calibration subnets, score held-out validation subnets, plot them.

Overhead model: ``measured = scale[r] * corrected_sum + per_block[r] * n_blocks + offset[r]``
by least squares, one fit per resolution (plus one over all resolutions as the fallback). Why
not one constant: a block timed alone runs again and again with its weights and activations hot
in cache, inside a network it does not, and how much that matters depends on activation sizes:
on the dev machine (onnxruntime CPU, 1 thread) measured/sum is about 0.9 at 224 and 1.0 at 128,
and the residual error correlates with the number of blocks (r = -0.65), not with parameters or
MACs; the per-block term took the held-out error from 3.1% to 2.7% MAPE at 128 and 2.3% to
1.8% at 224. With fewer than ``MIN_PER_BLOCK`` calibration subnets the per-block term is left
out (two parameters), with fewer than ``MIN_FIT`` the all-resolution fit is used.

Re-calibration (``edgessl profile --recalibrate``) on another device from at most ten subnets:
:mod:`edgessl.profile.recalibration`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgessl.arch import Arch
from edgessl.cost.latency import LatencyTable
from edgessl.profile.recalibration import recalibrated_overhead

MIN_FIT = 3  # subnets needed at a resolution for its own fit
MIN_PER_BLOCK = 8  # subnets needed to also fit the per-block term


def _lstsq(raw: np.ndarray, blocks: np.ndarray, measured: np.ndarray) -> dict:
    """measured = scale * raw + per_block * blocks + offset (per_block only with enough
    subnets whose depths differ; scale and offset only with enough raw spread). A fit that is
    not physical (scale <= 0, per_block < 0, or an offset that would make a network half the
    smallest one's size free or negative: noise on a few subnets) drops per_block, then
    falls back to the ratio fit measured = scale * raw, so a prediction is never negative."""
    n = len(raw)
    fits = []
    if n >= 2 and np.ptp(raw) > 0:
        if n >= MIN_PER_BLOCK and np.ptp(blocks) > 0:
            fits.append([raw, blocks])
        fits.append([raw])
    for cols in fits:
        a = np.column_stack([*cols, np.ones_like(raw)])
        coef, *_ = np.linalg.lstsq(a, measured, rcond=None)
        scale, offset = coef[0], coef[-1]
        per_block = coef[1] if len(cols) == 2 else 0.0
        if scale > 0 and per_block >= 0 and offset > -0.5 * scale * raw.min():
            break
    else:
        scale = float(np.median(measured / raw)) if n and np.all(raw > 0) else 1.0
        per_block = 0.0
        offset = 0.0 if n and np.all(raw > 0) else (float(np.mean(measured - raw)) if n else 0.0)
    return {"scale": round(float(scale), 6), "per_block_ms": round(float(per_block), 6),
            "offset_ms": round(float(offset), 6), "n": int(n)}


def scores(predicted: np.ndarray, measured: np.ndarray) -> dict:
    """Share within +-10% (and 5%), mean absolute percentage error, Spearman, n."""
    from scipy.stats import spearmanr

    err = np.abs(predicted / measured - 1)
    rho = float(spearmanr(predicted, measured)[0]) if len(measured) > 2 else None
    return {"n": int(len(measured)), "within_10pct": round(float(np.mean(err <= 0.10)), 4),
            "within_5pct": round(float(np.mean(err <= 0.05)), 4),
            "mape": round(float(np.mean(err)), 4), "max_ape": round(float(np.max(err)), 4),
            "spearman": None if rho is None else round(rho, 4)}


def drift(predicted: np.ndarray, measured: np.ndarray) -> float:
    """Median of measured / predicted: above 1, the device has become slower than the table."""
    return round(float(np.median(np.asarray(measured) / np.asarray(predicted))), 4)


def _refit(table: LatencyTable, rows: list[tuple]) -> None:
    """Set ``table.overhead``: least squares on the calibration subnets, or for a re-calibrated
    table the correction of its base fit on the re-calibration subnets."""
    recal = table.meta.get("recalibrated")
    if recal:
        table.overhead = dict(recal["base_overhead"])
        table._cache.clear()
        samples = [(Arch.from_dict(net["arch"]), r[3])
                   for net, r in zip(table.networks, rows, strict=True) if r[0] == "recalibrate"]
        table.overhead = recalibrated_overhead(table, samples) if samples else table.overhead
        return
    table.overhead = {}
    cal = [r for r in rows if r[0] == "calibrate"]
    if cal:
        raw, meas = np.array([r[2] for r in cal]), np.array([r[3] for r in cal])
        nb = np.array([r[4] for r in cal], dtype=np.float64)
        per_res = {}
        for res in sorted({r[1] for r in cal}):
            idx = np.array([r[1] == res for r in cal])
            if idx.sum() >= MIN_FIT:
                per_res[str(res)] = _lstsq(raw[idx], nb[idx], meas[idx])
        table.overhead = {
            "method": "least squares on calibration subnets, per resolution: measured = "
                      "scale * (sum of entries - boundary probes) + per_block * blocks + offset",
            "per_resolution": per_res, "all": _lstsq(raw, nb, meas)}


def finalize(table: LatencyTable) -> LatencyTable:
    """Fill ``table.overhead`` from its calibration networks (or, for a re-calibrated table,
    from its re-calibration networks) and ``table.validation`` from its validation networks
    (each network also gets ``predicted_ms``)."""
    table._cache.clear()
    rows = []
    for net in table.networks:
        arch = Arch.from_dict(net["arch"])
        rows.append((net["role"], arch.resolution, table.raw_sum(arch),
                     float(net["measured"]["median_ms"]), table.n_blocks(arch)))
    _refit(table, rows)
    table._cache.clear()
    for net in table.networks:
        net["predicted_ms"] = round(table.predict(Arch.from_dict(net["arch"])), 6)
    val = [(n, r) for n, r in zip(table.networks, rows, strict=True) if r[0] == "validate"]
    table.validation = {}
    if val:
        pred = np.array([n["predicted_ms"] for n, _ in val])
        meas = np.array([r[3] for _, r in val])
        res = np.array([r[1] for _, r in val])
        table.validation = {
            "held_out": any(r[0] in ("calibrate", "recalibrate") for r in rows),
            "all": scores(pred, meas),
            "per_resolution": {str(x): scores(pred[res == x], meas[res == x])
                               for x in sorted(set(res.tolist()))},
        }
    return table


def plot(table: LatencyTable, path: str | Path) -> Path | None:
    """Scatter of predicted vs measured validation latency with the +-10% band (PNG)."""
    val = [n for n in table.networks if n["role"] == "validate" and "predicted_ms" in n]
    if not val:
        return None
    v = table.validation.get("all", {})
    title = (f"{table.space} · {table.backend} · {table.meta['threads']} thread(s)\n"
             f"within ±10%: {v.get('within_10pct', 0):.1%}  MAPE {v.get('mape', 0):.1%}  "
             f"Spearman {v.get('spearman') or 0:.3f}  n={v.get('n', 0)}")
    points = [(n["arch"]["resolution"], n["measured"]["median_ms"], n["predicted_ms"])
              for n in val]
    return plot_points(points, title, path)


def plot_points(points: list[tuple[int, float, float]], title: str, path: str | Path) -> Path:
    """Scatter of (resolution, measured ms, predicted ms) points, one colour per resolution,
    with the identity line and the +-10% band; written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgessl.utils import atomic_write

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for r in sorted({p[0] for p in points}):
        pts = [(m, p) for res, m, p in points if res == r]
        ax.scatter(*zip(*pts, strict=True), s=14, label=f"{r}px")
    lo = min(min(m, p) for _, m, p in points) * 0.85
    hi = max(max(m, p) for _, m, p in points) * 1.1
    xs = np.linspace(lo, hi, 50)
    ax.plot(xs, xs, "k-", lw=1)
    ax.fill_between(xs, xs * 0.9, xs * 1.1, color="grey", alpha=0.2, label="±10%")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)
    return Path(path)


__all__ = ["finalize", "plot", "plot_points", "scores", "drift"]
