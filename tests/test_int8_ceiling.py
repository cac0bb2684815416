"""benchmarks/int8_ceiling.py on synthetic tables: the climb finds the network that gains most
from INT8, no network beats its best-gaining part, and tables of two devices are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_latency import synthetic

from edgessl.cost.latency import LatencyTable
from edgessl.spaces import get_space

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import int8_ceiling  # noqa: E402

SPACE = get_space("mobilenet")
KERNEL_GAIN = {3: 1.5, 5: 1.0, 7: 0.5}  # INT8 speedup of a block by its kernel
FIXED_GAIN = 1.2  # stem and head


def _pair() -> tuple[LatencyTable, LatencyTable]:
    fp = synthetic(probes=False)  # no boundary corrections: a block gains exactly its factor
    entries = {}
    for key, e in fp.entries.items():
        k = next((int(p[2:]) for p in key.split("|") if p.startswith("k=")), None)
        gain = 1.0 if key.startswith("probe|") else (
            KERNEL_GAIN[k] if key.startswith("mbconv|") and "mid=" in key and k else FIXED_GAIN)
        ms = e["median_ms"] / gain
        entries[key] = {**e, "median_ms": ms, "p10_ms": ms, "p90_ms": ms}
    fit = {"per_resolution": {}, "all": {"scale": 1.0, "per_block_ms": 0.0, "offset_ms": 0.0}}
    q = LatencyTable({**fp.meta, "dtype": "int8"}, entries, fit)
    fp.overhead = fit
    fp._cache.clear()
    return fp, q


def test_climb_reaches_the_best_gaining_network_and_no_more():
    fp, q = _pair()
    searched = SPACE.sample(np.random.default_rng(0), 224)
    scan, top = int8_ceiling.space_scan(fp, q, 224, 200, 0, searched)
    # every searchable block with the best-gaining kernel
    assert {b.kernel for s in top.stages for b in s} == {3}
    climbed = scan["climbed"]["speedup"]
    assert scan["max_sampled"] <= climbed + 1e-9
    # a weighted mean of its parts: above every other part's gain, below the best one's
    assert FIXED_GAIN < climbed < max(KERNEL_GAIN.values())
    rows = int8_ceiling.stage_ratios(fp, q, 224)
    assert all(r["max"] == pytest.approx(1.5) and r["min"] == pytest.approx(0.5) for r in rows)
    assert "k=3" in rows[0]["max_block"]


def test_tables_of_two_devices_are_refused(tmp_path):
    fp, q = _pair()
    for name, table, device in (("fp.json", fp, "CPU A"), ("q.json", q, "CPU B")):
        table.meta["device"] = device
        (tmp_path / name).write_text(json.dumps(table.to_dict()))
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "int8_ceiling.py"), "--fp32",
                        str(tmp_path / "fp.json"), "--int8", str(tmp_path / "q.json"),
                        "--no-measure"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert p.returncode == 2
    assert p.stderr.strip() == ("error: the tables differ in device: 'CPU A' (fp32) vs "
                                "'CPU B' (int8)")
