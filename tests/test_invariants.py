"""Golden invariants that refactors must keep: over 900 seeded random Archs per space, the
canonical JSON, exact cost (MACs, params), every layout block's latency-table key and the
shipped table's prediction hash to the values recorded before the runtime/checkpoint redesign
(issue 20). A change here means costs, keys or predictions moved: that is never a refactor."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from edgessl.cost.latency import LatencyTable
from edgessl.spaces import get_space

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "latency_tables" / "mobilenet-onnxruntime-cpu-xeon-t1-b1-fp32.json"

# recorded at commit 1b4a3b2 (before the redesign)
GOLDEN = {
    "mobilenet": "733a85c8359d5af55caec0c9fea8eb20c1e7323fad39ab2930f3c7237b67a10c",
    "resnet": "f9cb3cb48d45460d4bf62c298e2c0b72873e06b3537fe1825fa2bb2c0f7d7b3b",
    "resnet18": "efb72e859640c1263ac35f98c244c2ab49c3fad5f06f2493edc91f76f6751a8a",
}


def digest(space_name: str, n: int = 900, seed: int = 0) -> str:
    space = get_space(space_name)
    rng = np.random.default_rng(seed)
    table = LatencyTable.load(TABLE) if space_name == "mobilenet" else None
    h = hashlib.sha256()
    for _ in range(n):
        arch = space.sample(rng)
        macs, params = space.cost(arch)
        keys = [s.key for s in space.layout(arch).all()]
        h.update(arch.to_json().encode())
        h.update(f"|{macs}|{params}|".encode())
        h.update("|".join(keys).encode())
        if table is not None:
            h.update(f"|{table.predict(arch):.9e}".encode())
    return h.hexdigest()


@pytest.mark.parametrize("space_name", sorted(GOLDEN))
def test_costs_keys_and_predictions_unchanged(space_name: str) -> None:
    assert digest(space_name) == GOLDEN[space_name]
