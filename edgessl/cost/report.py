"""What ``edgessl cost`` computes, usable from Python: resolve a model reference, cost it."""

from __future__ import annotations

from pathlib import Path

from edgessl.arch import Arch
from edgessl.baselines import is_baseline
from edgessl.cost.flops import build_reference_network, fvcore_macs, model_cost
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


def cost_report(model: Arch | str, exact: bool = False, resolution: int | None = None,
                latency_table: str | None = None) -> dict:
    """A dict with name, resolution, mflops, params, feature_dim (+ fvcore_mflops, latency_ms)."""
    if isinstance(model, Arch) and resolution is not None:
        model = model.replace(resolution=resolution)
    c = model_cost(model, resolution)
    row = c.to_dict()
    if isinstance(model, Arch):
        row["arch"] = model.to_dict()
    if exact:
        net, _ = build_reference_network(model)
        row["fvcore_mflops"] = fvcore_macs(net, c.resolution) / 1e6
    if latency_table:
        from edgessl.cost.latency import LatencyTable

        row["latency_ms"] = LatencyTable.load(latency_table).predict(model)
    return row
