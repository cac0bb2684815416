"""What ``edgessl cost`` computes, usable from Python: resolve a model reference, cost it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgessl.arch import Arch
from edgessl.baselines import is_baseline
from edgessl.cost.flops import build_reference_network, fvcore_macs, model_cost
from edgessl.cost.latency import LatencyTable
from edgessl.errors import BadInput


def resolve_model(ref: str, where: str | None = None, inline: bool = False) -> Arch | str:
    """A baseline name stays a string; anything else is an arch JSON file (or, with
    ``inline``, arch JSON text). Errors name ``where`` the bad value came from."""
    if inline:
        try:
            return Arch.from_json(ref)
        except BadInput as exc:
            raise BadInput(f"{where}: {exc}") from None
    if is_baseline(ref):
        return ref.removeprefix("baseline:")
    if Path(ref).is_dir():
        raise BadInput(f"{ref} is a folder; give an arch JSON file (e.g. {ref}/best.arch.json)")
    if not Path(ref).exists():
        from edgessl.baselines import BASELINES

        raise BadInput(f"{ref!r} is neither an arch JSON file nor a baseline "
                       f"({', '.join(BASELINES)})")
    return Arch.load(ref)


PAIR_KEYS = ("device", "space", "backend", "threads", "batch")  # what an fp32/INT8 pair shares


def int8_pair(tables: Sequence[LatencyTable]) -> tuple[int, int] | None:
    """Indices of the first fp32 and INT8 tables of one device, space, backend, threads and
    batch, if any: two such tables predict a network's INT8 speedup (within 4% of what was
    measured on an AVX2 CPU; BENCHMARKS.md, ``int8_ceiling``)."""
    for i, a in enumerate(tables):
        for j, b in enumerate(tables):
            if a.meta.get("dtype", "fp32") == "fp32" and b.meta.get("dtype") == "int8" \
                    and all(a.meta.get(k) == b.meta.get(k) for k in PAIR_KEYS):
                return i, j
    return None


def cost_report(model: Arch | str, exact: bool = False, resolution: int | None = None,
                tables: Sequence[LatencyTable] = ()) -> dict:
    """A dict with name, resolution, mflops, params, feature_dim (+ fvcore_mflops). With
    latency ``tables``: ``latency_ms`` (the first table's prediction), with more than one also
    ``latency_ms_by_table`` (path -> ms) and, for an fp32/INT8 pair of one device
    (:func:`int8_pair`), ``int8_speedup`` (fp32 ms / INT8 ms)."""
    if isinstance(model, Arch) and resolution is not None:
        model = model.replace(resolution=resolution)
    c = model_cost(model, resolution)
    row = c.to_dict()
    if isinstance(model, Arch):
        row["arch"] = model.to_dict()
    if exact:
        net, _ = build_reference_network(model)
        row["fvcore_mflops"] = fvcore_macs(net, c.resolution) / 1e6
    if tables:
        ms = [t.predict(model) for t in tables]
        row["latency_ms"] = ms[0]
        if len(tables) > 1:
            row["latency_ms_by_table"] = {t.meta.get("path", str(i)): m
                                          for i, (t, m) in enumerate(zip(tables, ms, strict=True))}
        pair = int8_pair(tables)
        if pair:
            row["int8_speedup"] = ms[pair[0]] / ms[pair[1]]
    return row
