"""Re-calibrate a latency table on the device it is used on, from at most ten subnets.

**Model.** A table made on one device predicts ``p`` for a subnet (its linear prediction,
before any size exponent); here it measures ``m``::

    log(m / P) = (1 + g) * (a + b * (r - r_mid) / r_half + log(1 + sum_k d_k * x_k) + log(p / P))
                 - log(p / P)

``r`` is the resolution; ``x_k`` is the share of ``p`` that the subnet's kernel-``k`` blocks make
up (``scale[r]`` times their corrected ms, over ``p``), for every kernel size but the smallest,
the reference; ``P`` is the geometric mean of the re-calibration subnets' ``p``. ``a`` and ``b``
give one correction ``c(r)`` per resolution, log-linear in ``r``: the drift of a runtime upgrade
or another power mode (6% at 128 px to 9% at 224 px on the dev machine). The kernel terms are
what another CPU's vector units do: blocks of one kernel size get slower relative to the others.
The size exponent ``g`` is what its caches do: larger subnets cost relatively more (or less).
Measured: the shipped table (a Xeon with AVX-512 and AMX) on an AVX2-only EPYC ran 1.7x slower
overall; what ``c(r)`` alone left over correlated with the share of 7x7 blocks (r = 0.75), and
what ``c(r)`` and kernel terms left over with the predicted ms (r = -0.6 at 128 px: larger
subnets ran slower than predicted; per resolution, g = 0.05-0.18 over five runs of 30 subnets,
and the residual spread fell from 2.5-4.9% to 1.8-3.9%; ``benchmarks/recalibrate.py``,
BENCHMARKS.md). A prediction is then ``q * (q / P) ** g`` (``overhead["size_exponent"]``) with
``q = c(r) * (scale[r] * corrected + per_block[r] * n + offset[r])`` and each block's ms
multiplied by ``1 + d_k`` (``overhead["kernel_factors"]``, clipped to [``FACTOR_MIN``,
``FACTOR_MAX``]). ``d_k`` and ``g`` are fitted by nonlinear least squares (ridge-shrunk toward 0
by ``RIDGE``), only with at least ``MIN_KERNEL`` subnets (and ``g`` only when their predictions
span ``MIN_SIZE_SPREAD`` in log), then ``c(r)`` is re-fitted given them; with fewer than
``MIN_TREND`` subnets (or one resolution) ``c`` is one factor, the median ratio. Re-calibrating a
re-calibrated table composes its corrections and factors and fits its exponent afresh.

**Design.** Random subnets hardly differ in kernel mix (the 7x7 share of ten random subnets has a
spread of about 0.12), so kernel terms fitted on them rest on noise. The re-calibration subnets
are chosen instead (:func:`design`): from a seeded pool of random subnets and their
kernel-uniform copies (every block set to one kernel size), greedily, each pick the candidate
that most increases ``det(X^T X)`` of the features ``[1, r, x_k, log p]`` and the width multiplier
(D-optimal design; the width is not fitted, it only keeps the picks from sharing one width),
with the resolutions dealt as before. The subnets that score the table stay random.
"""

from __future__ import annotations

import numpy as np

from edgessl.arch import Arch, Block
from edgessl.cost.latency import LatencyTable
from edgessl.spaces import get_space

MIN_TREND = 3  # re-calibration subnets (over >= 2 resolutions) needed to fit the slope b
MIN_KERNEL = 6  # re-calibration subnets needed to fit the kernel and size terms
MIN_SIZE_SPREAD = 0.2  # log-ms spread of the subnets' predictions needed to fit the exponent
G_MIN, G_MAX = -0.5, 1.0  # a size exponent outside this is a misfit
SHAPE_TERMS = ("kernel", "size")  # what re-calibration fits besides c(r)
RIDGE = 0.005  # per subnet: the kernel terms' penalty, relative to their features' scale
FACTOR_MIN, FACTOR_MAX = 0.5, 2.0  # a kernel factor outside this is a misfit, not a device
RECALIBRATE_METHOD = ("table's per-resolution terms (scale, per_block, offset) times one "
                      "correction c(r) per resolution, log(c) = a + b * (r - r_mid) / r_half, "
                      "each block's ms times a factor 1 + d_k for its kernel size k, and the "
                      "prediction q raised to a size exponent, q * (q / ref_ms) ** g, fitted "
                      "by nonlinear least squares on log(measured / predicted) of designed "
                      "re-calibration subnets (d_k and g ridge-shrunk, reference kernel: the "
                      "smallest), then c(r) re-fitted given the factors and g")


def kernels_of(table: LatencyTable) -> list[int]:
    """The kernel sizes the table covers (its choices, else its space's), ascending."""
    ks = (table.meta.get("choices") or {}).get("kernels") or get_space(table.space).kernels
    return sorted(int(k) for k in ks)


def _res_centre(table: LatencyTable) -> tuple[float, float]:
    """(r_mid, r_half) of the table's resolutions: the trend's variable is (r - mid) / half."""
    res = [int(r) for r in table.meta["resolutions"]]
    return (max(res) + min(res)) / 2, max((max(res) - min(res)) / 2, 1.0)


def _predicted_features(table: LatencyTable, archs: list[Arch]) -> tuple[np.ndarray, np.ndarray]:
    """(linear prediction ms, :func:`features`) per Arch: one prediction serves both. Linear:
    before the table's size exponent, which a re-calibration fits afresh."""
    mid, half = _res_centre(table)
    others = kernels_of(table)[1:]
    preds, rows = [], []
    for a in archs:
        pred, sums = table.linear_predict(a), table.kernel_sums(a)
        scale = table.fit_for(a.resolution)[0]
        preds.append(pred)
        rows.append([1.0, (a.resolution - mid) / half,
                     *(scale * sums.get(k, 0.0) / pred for k in others)])
    return (np.array(preds, dtype=np.float64),
            np.array(rows, dtype=np.float64).reshape(len(archs), 2 + len(others)))


def features(table: LatencyTable, archs: list[Arch]) -> np.ndarray:
    """Rows ``[1, (r - r_mid) / r_half, x_k for each kernel but the smallest]`` per Arch."""
    return _predicted_features(table, archs)[1]


def _shape_terms(table: LatencyTable, x: np.ndarray, y: np.ndarray, lq: np.ndarray,
                 terms: frozenset[str]) -> tuple[dict[int, float], float]:
    """``d_k`` per kernel and the size exponent ``g`` (none/0 when too few subnets or no spread
    in kernel mix or size): nonlinear least squares of
    ``y = (1 + g) * (a + b * r + log(1 + sum_k d_k * x_k) + lq) - lq``, ridge on ``d_k``, ``g``."""
    from scipy.optimize import least_squares

    others = kernels_of(table)[1:]
    enough = len(y) >= MIN_KERNEL
    kern = (enough and "kernel" in terms and bool(others)
            and np.min(np.ptp(x[:, 2:], axis=0)) >= 0.05)
    size = enough and "size" in terms and float(np.ptp(lq)) >= MIN_SIZE_SPREAD
    if not (kern or size):
        return {}, 0.0
    trend = len(y) >= MIN_TREND and len(set(x[:, 1].tolist())) >= 2
    base = x[:, :2] if trend else x[:, :1]  # no slope from one resolution
    shares = x[:, 2:] if kern else np.zeros((len(y), 0))
    nb, nd, ridge = base.shape[1], shares.shape[1], np.sqrt(RIDGE * len(y))
    lo = FACTOR_MIN - 1 + 1e-6

    def residuals(theta: np.ndarray) -> np.ndarray:
        d, g = theta[nb:nb + nd], theta[nb + nd:]
        linear = base @ theta[:nb] + np.log1p(np.maximum(shares @ d, lo)) + lq
        fit = (1 + (g[0] if size else 0.0)) * linear - lq
        return np.concatenate([fit - y, ridge * d, ridge * g])

    start = np.zeros(nb + nd + size)
    start[0] = float(np.mean(y))
    theta = least_squares(residuals, start, xtol=1e-12, ftol=1e-12, gtol=1e-12, bounds=(
        [-np.inf] * nb + [lo] * nd + [G_MIN] * size,
        [np.inf] * nb + [FACTOR_MAX - 1] * nd + [G_MAX] * size)).x
    terms = {k: float(v) for k, v in zip(others, theta[nb:nb + nd], strict=True)} if kern else {}
    return terms, float(theta[-1]) if size else 0.0


def recalibrated_overhead(table: LatencyTable, samples: list[tuple[Arch, float]],
                          terms: tuple[str, ...] = SHAPE_TERMS) -> dict:
    """The table's overhead re-fitted from ``samples`` of (Arch, ms measured now) (see the
    module doc); ``corrections`` records c(r), ``kernel_factors`` the block factors (the base
    table's own times the new ones), ``size_exponent`` g and its reference, and
    ``per_resolution[r]["n"]`` the subnets seen there. ``terms``: which of ``SHAPE_TERMS``
    to fit besides c(r) (fewer: the earlier methods, for comparisons; ``()``: c(r) only)."""
    archs = [a for a, _ in samples]
    measured = np.array([m for _, m in samples], dtype=np.float64)
    predicted, x = _predicted_features(table, archs)
    lp0 = float(np.mean(np.log(predicted)))
    base = {k: v for k, v in table.overhead.items() if k != "size_exponent"}
    factors = {str(k): float(v) for k, v in (base.get("kernel_factors") or {}).items()}
    shape, g = _shape_terms(table, x, np.log(measured / predicted), np.log(predicted) - lp0,
                            frozenset(terms))
    g = round(g, 6)
    if shape:
        for k, d in shape.items():
            factors[str(k)] = round(factors.get(str(k), 1.0) * (1 + d), 6)
        view = LatencyTable(table.meta, table.entries, {**base, "kernel_factors": factors})
        predicted = np.array([view.linear_predict(a) for a in archs])
    lq = np.log(predicted) - lp0
    y = (np.log(measured / predicted) - g * lq) / (1 + g)  # log c(r), given factors and g
    rn = x[:, 1]
    if len(samples) >= MIN_TREND and len(set(rn.tolist())) >= 2:
        slope, intercept = np.polyfit(rn, y, 1)
    else:
        slope, intercept = 0.0, float(np.median(y))
    table_res = [int(r) for r in table.meta["resolutions"]]
    mid, half = _res_centre(table)
    res = np.array([a.resolution for a in archs])
    per_res, corrections = {}, {}
    for r in table_res:
        c = float(np.exp(intercept + slope * (r - mid) / half))
        scale, per_block, offset = table.fit_for(r)
        per_res[str(r)] = {"scale": round(c * scale, 6), "per_block_ms": round(c * per_block, 6),
                           "offset_ms": round(c * offset, 6), "n": int(np.sum(res == r))}
        corrections[str(r)] = round(c, 6)
    base_all = base.get("all") or {"scale": 1.0, "per_block_ms": 0.0, "offset_ms": 0.0}
    c_all = float(np.exp(intercept))
    out = {"method": RECALIBRATE_METHOD, "per_resolution": per_res,
           "all": {"scale": round(c_all * float(base_all["scale"]), 6),
                   "per_block_ms": round(c_all * float(base_all.get("per_block_ms", 0.0)), 6),
                   "offset_ms": round(c_all * float(base_all["offset_ms"]), 6),
                   "n": len(samples)},
           "corrections": corrections,
           "trend": {"a": round(float(intercept), 6), "b": round(float(slope), 6),
                     "r_mid": mid, "r_half": half}}
    if factors:
        out["kernel_factors"] = factors
    if g:
        out["size_exponent"] = {"g": round(g, 6), "ref_ms": round(float(np.exp(lp0)), 6)}
    return out


def uniform_copies(arch: Arch, kernels: list[int]) -> list[Arch]:
    """``arch`` with every block set to one kernel size, for each size."""
    return [arch.replace(stages=tuple(tuple(Block(k, b.expand) for b in stage)
                                      for stage in arch.stages)) for k in kernels]


def design(table: LatencyTable, pool: list[Arch], counts: dict[int, int],
           exclude: set[str] = frozenset()) -> list[Arch]:
    """``counts[r]`` subnets per resolution from ``pool`` and its kernel-uniform copies (none in
    ``exclude``, canonical JSON), picked greedily for a D-optimal fit (see the module doc)."""
    seen, cands = set(exclude), []
    ks = kernels_of(table)
    for a in pool:
        for c in (a, *uniform_copies(a, ks)):
            if c.to_json() not in seen:
                seen.add(c.to_json())
                cands.append(c)
    widths = np.array([float(a.width_mult) for a in cands])
    spread_w = (widths - widths.mean()) / max(float(np.ptp(widths)) / 2, 1e-9)
    preds, feats = _predicted_features(table, cands)
    size = np.log(preds) - np.mean(np.log(preds))
    x = np.column_stack([feats, size, spread_w])  # width: for variety, not fitted
    res = np.array([a.resolution for a in cands])
    info = 1e-3 * np.eye(x.shape[1])
    slots = [r for i in range(max(counts.values(), default=0)) for r in counts if i < counts[r]]
    taken: list[int] = []
    for r in slots:  # resolutions dealt in turn, as spread() deals them
        free = np.setdiff1d(np.flatnonzero(res == r), taken)
        if not free.size:
            continue
        gain = np.einsum("ij,jk,ik->i", x[free], np.linalg.inv(info), x[free])
        pick = int(free[int(np.argmax(gain))])
        taken.append(pick)
        info += np.outer(x[pick], x[pick])
    return [cands[i] for i in taken]


__all__ = ["recalibrated_overhead", "design", "features", "uniform_copies", "kernels_of",
           "RECALIBRATE_METHOD", "MIN_TREND", "MIN_KERNEL", "MIN_SIZE_SPREAD", "SHAPE_TERMS"]
