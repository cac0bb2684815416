"""Latency lookup tables: load, check, save, and predict the latency (ms) of an Arch.

A table (``edgessl-latency/1`` JSON, made by ``edgessl profile``) holds one entry per block
configuration, keyed by the block spec's canonical ``.key``, measured in isolation on one device
with one backend, batch, dtype and thread count. Prediction for an Arch with layout blocks
``b_1..b_n``::

    corrected = sum_i median(b_i) - sum_{i<n} boundary(out shape of b_i)
    latency   = scale[r] * corrected + per_block[r] * n + offset[r]   (r: the resolution)

``boundary(shape)`` is what a block boundary costs in isolation but not inside a network: the
per-call overhead and, on onnxruntime CPU, the NCHW<->NCHWc layout reorders at the model's input
and output. It is measured with two probes at that shape, one and two depthwise 1x1 convs:
``2 * t(one) - t(two)`` (entries ``probe|in=HxWxC|n=1`` and ``n=2``). ``scale``, ``per_block``
and ``offset`` are fitted by least squares on whole calibration subnets, per resolution (cache
behaviour differs with activation size; see :mod:`edgessl.profile.validate`); the table's
``validation`` then reports held-out subnets. A re-calibrated table (``edgessl profile
--recalibrate``) may also carry ``kernel_factors``: each block's corrected ms is multiplied by its
kernel size's factor (another device's vector units favour some kernel sizes over others), and a
``size_exponent`` ``{"g", "ref_ms"}``: the linear prediction ``q`` above becomes
``q * (q / ref_ms) ** g`` (on another device larger networks can cost relatively more, e.g. when
their activations outgrow its caches; see :mod:`edgessl.profile.recalibration`). This module
needs no torch: ``edgessl cost`` and
search load it cheaply.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgessl.arch import Arch
from edgessl.errors import BadInput
from edgessl.runtime.backends import BACKENDS as _REGISTRY
from edgessl.spaces import get_space

FORMAT = "edgessl-latency/1"
BACKENDS = tuple(_REGISTRY)  # the one backend registry's names (edgessl.runtime.backends)
FIT_TERMS = ("scale", "offset_ms")  # what every fit of ``overhead`` needs (per_block_ms optional)
_REQUIRED = ("format", "space", "backend", "threads", "batch", "dtype", "resolutions", "entries")


def probe_key(hw: int, channels: int, n: int) -> str:
    """Key of the boundary probe with ``n`` depthwise 1x1 convs on an HxWxC tensor."""
    return f"probe|in={hw}x{hw}x{channels}|n={n}"


def boundary_keys(spec) -> tuple[str, str]:
    """The two probe keys measuring the boundary after ``spec`` (its output shape)."""
    return probe_key(spec.out_hw, spec.out_ch, 1), probe_key(spec.out_hw, spec.out_ch, 2)


@dataclass
class LatencyTable:
    """A measured table plus its metadata, fitted overhead and validation (see module doc)."""

    meta: dict[str, Any]
    entries: dict[str, dict[str, float]]
    overhead: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    networks: list[dict[str, Any]] = field(default_factory=list)
    # False for a file with no "overhead" key at all: a device kit's raw measurements before
    # `edgessl profile --import` fitted them (a profiled table always writes the key)
    has_overhead: bool = True
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # ---- metadata --------------------------------------------------------------------------
    @property
    def space(self) -> str:
        return self.meta["space"]

    @property
    def backend(self) -> str:
        return self.meta["backend"]

    @property
    def complete(self) -> bool:
        return bool(self.meta.get("complete", True))

    def describe(self) -> str:
        m = self.meta
        return (f"{m['space']} on {m['backend']} ({m.get('device', '?')}), threads {m['threads']},"
                f" batch {m['batch']}, {m['dtype']}, {len(self.entries)} entries")

    # ---- files ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        meta = {k: v for k, v in self.meta.items() if k != "path"}
        return {**meta, "overhead": self.overhead, "validation": self.validation,
                "networks": self.networks,
                "entries": {k: self.entries[k] for k in sorted(self.entries)}}

    def save(self, path: str | Path) -> Path:
        """Write the table atomically (readers never see half a file)."""
        import os

        from edgessl.utils import atomic_write_text

        path = atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(path, 0o666 & ~umask)  # a shared artefact, not a private temp file
        return path

    @classmethod
    def from_dict(cls, data: Any, where: str = "latency table") -> LatencyTable:
        """Parse and check the format version, required fields and entry values."""
        if not isinstance(data, dict):
            raise BadInput(f"{where}: expected a JSON object")
        fmt = data.get("format")
        if fmt != FORMAT:
            raise BadInput(f"{where}: format {fmt!r} is not supported; expected {FORMAT!r}")
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise BadInput(f"{where}: missing field {missing[0]!r}")
        if data["backend"] not in BACKENDS:
            raise BadInput(f"{where}: unknown backend {data['backend']!r}; known: "
                           f"{', '.join(BACKENDS)}")
        entries = data["entries"]
        if not isinstance(entries, dict):
            raise BadInput(f"{where}: entries must be an object of key -> timing")
        for key, e in entries.items():
            med = e.get("median_ms") if isinstance(e, dict) else None
            if not isinstance(med, (int, float)) or isinstance(med, bool) or not med >= 0:
                raise BadInput(f"{where}: entry {key!r} has no valid median_ms")
        _check_overhead(data.get("overhead"), where)
        meta = {k: v for k, v in data.items()
                if k not in ("entries", "overhead", "validation", "networks")}
        return cls(meta, dict(entries), dict(data.get("overhead") or {}),
                   dict(data.get("validation") or {}), list(data.get("networks") or []),
                   has_overhead="overhead" in data)

    @classmethod
    def load(cls, path: str | Path, space: str | None = None,
             backend: str | None = None) -> LatencyTable:
        """Read a table; refuse it when it is unreadable, of another format version, or made
        for another ``space``/``backend`` than the ones asked for."""
        p = Path(path)
        if p.is_dir():
            raise BadInput(f"latency table {p} is a folder; give the table's .json file")
        if not p.is_file():
            raise BadInput(f"latency table not found: {p}")
        try:
            data = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadInput(f"latency table {p} cannot be read: {exc}") from None
        table = cls.from_dict(data, where=f"latency table {p}")
        table.meta["path"] = str(p)
        table.require(space=space, backend=backend)
        return table

    def require(self, space: str | None = None, backend: str | None = None) -> None:
        """Raise BadInput if the table is for another space or backend."""
        where = f"latency table {self.meta.get('path', '')}".rstrip()
        if space is not None and space != self.space:
            raise BadInput(f"{where} is for space {self.space!r}, not {space!r}")
        if backend is not None and backend != self.backend:
            raise BadInput(f"{where} was measured with backend {self.backend!r}, not {backend!r}")

    # ---- prediction ------------------------------------------------------------------------
    def entry_ms(self, key: str) -> float:
        try:
            return float(self.entries[key]["median_ms"])
        except KeyError:
            where = self.meta.get("path", "the latency table")
            raise BadInput(f"{where} has no entry {key!r}: profile this configuration "
                           f"(edgessl profile --space {self.space} ...)") from None

    def _boundary_ms(self, spec) -> float:
        if "has_probes" not in self._cache:
            self._cache["has_probes"] = any(k.startswith("probe|") for k in self.entries)
        if not self._cache["has_probes"]:
            return 0.0  # a table without probes: no boundary correction
        k1, k2 = boundary_keys(spec)
        one, two = self.entry_ms(k1), self.entry_ms(k2)
        return float(min(max(2 * one - two, 0.0), one))

    def fixed_ms(self, r: int, w: float) -> float:
        """Stem, fixed blocks and head of one (resolution, width): their corrected sum."""
        key = ("fixed", r, w)
        if key not in self._cache:
            sp = get_space(self.space)
            pre, post = sp.fixed_specs(r, w)
            total = sum(self.entry_ms(s.key) - self._boundary_ms(s) for s in (*pre, *post[:-1]))
            self._cache[key] = total + self.entry_ms(post[-1].key)
        return self._cache[key]

    def block_ms(self, r: int, w: float, i: int, j: int, k: int, e: float) -> float:
        """One searchable block's ms as predictions add it (entry minus boundary correction,
        times a re-calibrated table's kernel factor): resolution ``r``, width ``w``, stage
        ``i``, slot ``j``, kernel ``k``, expand ``e``."""
        spec = get_space(self.space).block(r, w, i, j, k, e)
        ms = self.entry_ms(spec.key) - self._boundary_ms(spec)
        factors = (self.overhead or {}).get("kernel_factors")
        return ms * float(factors.get(str(k), 1.0)) if factors else ms

    def kernel_sums(self, arch: Arch) -> dict[int, float]:
        """The searchable blocks' corrected ms summed per kernel size (kernel factors of a
        re-calibrated table applied): what re-calibration's kernel terms weigh. Stem and head
        are not included."""
        self.raw_sum(arch)  # validates the Arch and fills the per-(resolution, width) lookups
        _, stages = self._cache[(arch.resolution, arch.width_mult)]
        sums: dict[int, float] = {}
        for i, stage in enumerate(arch.stages):
            for j, b in enumerate(stage):
                sums[b.kernel] = sums.get(b.kernel, 0.0) + stages[i][j][b.kernel][b.expand]
        return sums

    def raw_sum(self, arch: Arch) -> float:
        """Sum of the Arch's entries minus the boundary corrections (before scale/offset).

        Lookups go through nested dicts per (resolution, width): stage -> slot -> kernel ->
        expand -> ms, filled on first use, so a prediction is ~20 dict hits (a few us)."""
        if not isinstance(arch, Arch):
            raise BadInput(f"latency tables cover architectures of a search space; {arch!r} "
                           "is a baseline (measure it with edgessl bench)")
        if arch.space != self.space:
            where = self.meta.get("path", "the latency table")
            raise BadInput(f"{where} is for space {self.space!r}; arch is of space "
                           f"{arch.space!r}")
        if not self.complete:
            raise BadInput(f"latency table {self.meta.get('path', '')} is unfinished "
                           f"({len(self.entries)} entries so far): rerun edgessl profile "
                           "with the same --out to resume it")
        r, w = arch.resolution, arch.width_mult
        lut = self._cache.get((r, w))
        if lut is None:
            slots = [[{} for _ in range(d)] for d in get_space(self.space).max_depths]
            lut = self._cache[(r, w)] = (self.fixed_ms(r, float(w)), slots)
        total, stages = lut
        for i, stage in enumerate(arch.stages):
            slots = stages[i]
            for j, b in enumerate(stage):
                try:
                    total += slots[j][b.kernel][b.expand]
                except KeyError:
                    value = self.block_ms(r, float(w), i, j, b.kernel, b.expand)
                    slots[j].setdefault(b.kernel, {})[b.expand] = value
                    total += value
        return total

    def fit_for(self, resolution: int) -> tuple[float, float, float]:
        """(scale, per_block_ms, offset_ms) for a resolution: its own fit, else the
        all-resolution fit, else (1, 0, 0) for an uncalibrated table."""
        if not (self.has_overhead or self.overhead):
            raise BadInput(f"latency table {self.meta.get('path', '')} has no fitted overhead "
                           "(raw device measurements?): bring it in with edgessl profile "
                           "--import first")
        key = ("fit", resolution)
        if key not in self._cache:
            fits = self.overhead.get("per_resolution", {})
            fit = fits.get(str(resolution)) or self.overhead.get("all")
            self._cache[key] = ((float(fit["scale"]), float(fit.get("per_block_ms", 0.0)),
                                 float(fit["offset_ms"])) if fit else (1.0, 0.0, 0.0))
        return self._cache[key]

    def n_blocks(self, arch: Arch) -> int:
        """How many layout specs (stem, blocks, head) the Arch has: the per-block term's count."""
        key = ("nfixed", arch.resolution, arch.width_mult)
        if key not in self._cache:
            sp = get_space(self.space)
            r, w = arch.resolution, float(arch.width_mult)
            self._cache[key] = sum(map(len, sp.fixed_specs(r, w)))
        return self._cache[key] + sum(len(s) for s in arch.stages)

    def linear_predict(self, model: Arch) -> float:
        """``scale[r] * corrected + per_block[r] * n + offset[r]``: the prediction before a
        re-calibrated table's size exponent (what re-calibration fits that exponent on)."""
        raw = self.raw_sum(model)
        scale, per_block, offset = self.fit_for(model.resolution)
        return scale * raw + per_block * self.n_blocks(model) + offset

    def _sized(self, q):
        """``q * (q / ref_ms) ** g`` with the table's size exponent; ``q`` itself without one."""
        size = (self.overhead or {}).get("size_exponent")
        if not size:
            return q
        return q * (q / float(size["ref_ms"])) ** float(size["g"])

    def predict(self, model: Arch | str) -> float:
        """Predicted latency (ms) of one Arch; BadInput names a missing entry."""
        return float(self._sized(self.linear_predict(model)))

    def predict_many(self, archs: Iterable[Arch]) -> np.ndarray:
        """Predicted latency (ms) of many Archs (per-block lookups cached: a few us per Arch)."""
        return np.array([self.predict(a) for a in archs], dtype=np.float64)

    def _gene_lut(self):
        """Arrays for :meth:`predict_genes`: block ms [res, width, stage, slot, kernel, expand]
        (NaN where the table has no entry), fixed ms [res, width], scale/offset [res]."""
        if "genes" not in self._cache:
            sp = get_space(self.space)
            shape = (len(sp.resolutions), len(sp.width_mults), sp.n_stages, max(sp.max_depths),
                     len(sp.kernels), len(sp.expands))
            lut = np.full(shape, np.nan)
            fixed = np.full(shape[:2], np.nan)
            for a, r in enumerate(sp.resolutions):
                for b, w in enumerate(sp.width_mults):
                    try:
                        fixed[a, b] = self.fixed_ms(r, w)
                    except BadInput:
                        continue
                    for i, dmax in enumerate(sp.max_depths):
                        for j in range(dmax):
                            for c, k in enumerate(sp.kernels):
                                for d, e in enumerate(sp.expands):
                                    try:
                                        lut[a, b, i, j, c, d] = self.block_ms(r, w, i, j, k, e)
                                    except BadInput:
                                        pass
            fits = np.array([self.fit_for(r) for r in sp.resolutions])
            n_fixed = np.array([[sum(map(len, sp.fixed_specs(r, w)))
                                 for w in sp.width_mults] for r in sp.resolutions])
            self._cache["genes"] = (sp, lut, fixed, n_fixed, fits)
        return self._cache["genes"]

    def predict_genes(self, genes: np.ndarray) -> np.ndarray:
        """Predicted latency (ms) of a batch of gene vectors (``space.encode`` rows, shape
        (N, G)), fully vectorised: 10,000 rows in a few milliseconds. For evolutionary search
        that works on genes; a row needing a missing entry raises BadInput naming it."""
        sp, lut, fixed, n_fixed, fits = self._gene_lut()
        g = np.atleast_2d(np.asarray(genes, dtype=np.int64))
        if g.shape[1] != len(sp.gene_sizes()):
            raise BadInput(f"genes have {g.shape[1]} columns; space {sp.name!r} has "
                           f"{len(sp.gene_sizes())}")
        res = g[:, 0]
        total = sp.sum_block_lut(g, lut, fixed)
        count = n_fixed[res, g[:, 1]] + sp.active_blocks(g)
        bad = np.flatnonzero(np.isnan(total))
        if bad.size:
            self.raw_sum(sp.decode(g[bad[0]]))  # raises BadInput naming the missing key
        return self._sized(fits[res, 0] * total + fits[res, 1] * count + fits[res, 2])


def _check_overhead(overhead: Any, where: str) -> None:
    """BadInput naming the first fit of ``overhead`` (``per_resolution[R]`` or ``all``) that is
    not an object with numeric ``scale`` and ``offset_ms`` (and ``per_block_ms`` if present)."""
    if overhead in (None, {}):
        return
    if not isinstance(overhead, dict):
        raise BadInput(f"{where}: overhead must be an object with per_resolution/all fits")
    per_res = overhead.get("per_resolution", {})
    if not isinstance(per_res, dict):
        raise BadInput(f"{where}: overhead per_resolution must be an object of fits")
    factors = overhead.get("kernel_factors", {})
    if not isinstance(factors, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
            for v in factors.values()):
        raise BadInput(f"{where}: overhead kernel_factors must map kernel sizes to positive "
                       "numbers")
    size = overhead.get("size_exponent")
    if size is not None and not (
            isinstance(size, dict) and all(isinstance(size.get(k), (int, float))
                                           and not isinstance(size.get(k), bool)
                                           for k in ("g", "ref_ms"))
            and -0.5 <= size["g"] <= 1.0 and size["ref_ms"] > 0):
        raise BadInput(f"{where}: overhead size_exponent must be {{\"g\": a number from -0.5 "
                       "to 1, \"ref_ms\": a positive number}")
    fits = [(f"per_resolution[{r!r}]", fit) for r, fit in per_res.items()]
    if "all" in overhead:
        fits.append(("all", overhead["all"]))
    for name, fit in fits:
        if not isinstance(fit, dict):
            raise BadInput(f"{where}: overhead fit {name} is not an object")
        for term in (*FIT_TERMS, *(["per_block_ms"] if "per_block_ms" in fit else [])):
            value = fit.get(term)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise BadInput(f"{where}: overhead fit {name} lacks a numeric {term!r}")


__all__ = ["FORMAT", "BACKENDS", "FIT_TERMS", "LatencyTable", "probe_key", "boundary_keys"]
