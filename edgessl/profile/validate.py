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

Re-calibration (``edgessl profile --recalibrate``, :func:`recalibrated_overhead`): a table that
has drifted (runtime upgraded, another power mode, another host) is re-fitted from at most ten
subnets measured now. Ten subnets cannot refit three terms per resolution (the per-block term
alone needs ``MIN_PER_BLOCK`` per resolution), so the table's own fit keeps its shape and each
resolution's terms are multiplied by one correction ``c(r)``, log-linear in the resolution:
``log(measured / predicted) = a + b * (r - r_mid) / r_half``, two parameters fitted by least
squares over all the subnets (one, the median, when they cover a single resolution). On the dev
machine the shipped table's drift was of exactly this kind: 6% at 128 px to 9% at 224 px.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgessl.arch import Arch
from edgessl.cost.latency import LatencyTable

MIN_FIT = 3  # subnets needed at a resolution for its own fit
MIN_PER_BLOCK = 8  # subnets needed to also fit the per-block term
MIN_TREND = 3  # re-calibration subnets (over >= 2 resolutions) needed to fit the slope b
RECALIBRATE_METHOD = ("table's per-resolution terms (scale, per_block, offset) times one "
                      "correction c(r) per resolution, log(c) = a + b * (r - r_mid) / r_half, "
                      "fitted by least squares on log(measured / predicted) of the re-calibration "
                      "subnets")


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


def recalibrated_overhead(table: LatencyTable, samples: list[tuple[int, float, float]]) -> dict:
    """The table's overhead re-fitted from ``samples`` of (resolution, predicted by the table's
    current fit, measured now) ms (see the module doc); ``corrections`` records c(r) and the
    subnets seen per resolution."""
    res = np.array([s[0] for s in samples], dtype=np.float64)
    y = np.log(np.array([s[2] for s in samples]) / np.array([s[1] for s in samples]))
    table_res = [int(r) for r in table.meta["resolutions"]]
    mid, half = (max(table_res) + min(table_res)) / 2, max((max(table_res) - min(table_res)) / 2,
                                                           1.0)
    if len(samples) >= MIN_TREND and len(set(res.tolist())) >= 2:
        slope, intercept = np.polyfit((res - mid) / half, y, 1)
    else:
        slope, intercept = 0.0, float(np.median(y))
    per_res, corrections = {}, {}
    for r in table_res:
        c = float(np.exp(intercept + slope * (r - mid) / half))
        scale, per_block, offset = table.fit_for(r)
        per_res[str(r)] = {"scale": round(c * scale, 6), "per_block_ms": round(c * per_block, 6),
                           "offset_ms": round(c * offset, 6),
                           "n": int(np.sum(res == r))}
        corrections[str(r)] = round(c, 6)
    base_all = table.overhead.get("all") or {"scale": 1.0, "per_block_ms": 0.0, "offset_ms": 0.0}
    c_all = float(np.exp(intercept))
    return {"method": RECALIBRATE_METHOD, "per_resolution": per_res,
            "all": {"scale": round(c_all * float(base_all["scale"]), 6),
                    "per_block_ms": round(c_all * float(base_all.get("per_block_ms", 0.0)), 6),
                    "offset_ms": round(c_all * float(base_all["offset_ms"]), 6),
                    "n": len(samples)},
            "corrections": corrections,
            "trend": {"a": round(float(intercept), 6), "b": round(float(slope), 6),
                      "r_mid": mid, "r_half": half}}


def _refit(table: LatencyTable, rows: list[tuple]) -> None:
    """Set ``table.overhead``: least squares on the calibration subnets, or for a re-calibrated
    table the correction of its base fit on the re-calibration subnets."""
    recal = table.meta.get("recalibrated")
    if recal:
        table.overhead = dict(recal["base_overhead"])
        table._cache.clear()
        samples = [(r[1], table.predict(Arch.from_dict(net["arch"])), r[3])
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


__all__ = ["finalize", "plot", "plot_points", "scores", "drift", "recalibrated_overhead"]
