"""The one runtime: timer (rotation, warm-up, clocks, statistics), sessions, the one backend
registry, and that profile, bench and the device kit all use it without a second copy, torch-free.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgessl.runtime import SessionError, Unavailable, timer
from edgessl.runtime.backends import BACKENDS, KIT_PROVIDERS, get_backend
from edgessl.runtime.jsonfile import read_json, write_json_atomic
from edgessl.runtime.sessions import OrtSession, TorchSession

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT / "export" / "profile_device.py"


def tiny_onnx(path: Path, batch="batch", elem=TensorProto.FLOAT) -> Path:
    """input (N, 2, 4, 4) -> 1x1 conv -> relu: enough for a session."""
    dtype = np.float16 if elem == TensorProto.FLOAT16 else np.float32
    w = numpy_helper.from_array(np.ones((3, 2, 1, 1), dtype), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["c"]), helper.make_node("Relu", ["c"], ["y"])],
        "g", [helper.make_tensor_value_info("input", elem, [batch, 2, 4, 4])],
        [helper.make_tensor_value_info("y", elem, None)], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


# ---- timer --------------------------------------------------------------------------------------
def test_rounds_rotate_and_warm_up_each_visit():
    calls: list[str] = []
    runners = {n: (lambda n=n: calls.append(n)) for n in "abc"}
    times = timer.time_interleaved(runners, runs=6, rounds=3, warmup=4)
    assert {k: len(v) for k, v in times.items()} == {"a": 6, "b": 6, "c": 6}
    # round 0: a b c, each 4 warm-up + 2 timed; round 1 starts at b, round 2 at c; later visits
    # re-warm with max(1, 4 // 4) = 1 call
    expected = []
    for r, order in enumerate(("abc", "bca", "cab")):
        for name in order:
            expected += [name] * ((4 if r == 0 else 1) + 2)
    assert calls == expected


def test_no_warmup_means_none_and_rounds_never_exceed_runs():
    calls: list[int] = []
    timer.time_interleaved({"x": lambda: calls.append(1)}, runs=3, rounds=10, warmup=0)
    assert len(calls) == 3
    assert timer.rewarm_calls(0) == 0 and timer.rewarm_calls(10) == 2
    with pytest.raises(ValueError):
        timer.time_interleaved({"x": lambda: None}, runs=0, rounds=1, warmup=0)


def test_cpu_clock_ignores_time_not_spent_on_this_thread():
    import time

    t = timer.time_interleaved({"sleep": lambda: time.sleep(0.02)}, 3, 1, 0, clock="cpu")
    w = timer.time_interleaved({"sleep": lambda: time.sleep(0.02)}, 3, 1, 0, clock="wall")
    assert max(t["sleep"]) < 10 <= min(w["sleep"])  # ms: asleep, the thread uses no CPU


def test_summarize_percentiles_spread_and_entry_keys():
    s = timer.summarize([float(i) for i in range(1, 101)])
    assert s["median_ms"] == pytest.approx(50.5) and s["p90_ms"] == pytest.approx(90.1)
    assert s["p10_ms"] == pytest.approx(10.9) and s["p99_ms"] == pytest.approx(99.01)
    assert s["spread"] == pytest.approx((90.1 - 10.9) / 50.5, abs=1e-6) and s["count"] == 100
    assert s["min_ms"] == 1.0 and s["mean_ms"] == pytest.approx(50.5)
    # a latency-table entry keeps the table format's four fields
    assert list(timer.entry([1.0, 2.0, 3.0])) == ["median_ms", "p10_ms", "p90_ms", "count"]


def test_measure_chunked_resumes_and_closes_sessions():
    made, closed, saves = [], [], []

    class Session:
        def __init__(self, key):
            made.append(key)
            self.key = key

        def __call__(self):
            pass

        def close(self):
            closed.append(self.key)

    done = {"a": {"median_ms": 1.0}}
    timer.measure_chunked(["a", "b", "c"], Session, done, lambda d: saves.append(len(d)),
                          runs=2, rounds=1, warmup=0, clock="wall", chunk=1)
    assert made == closed == ["b", "c"] and saves == [2, 3]
    assert done["a"] == {"median_ms": 1.0} and done["c"]["count"] == 2


# ---- sessions and registry ----------------------------------------------------------------------
def test_ort_session_binds_input_and_outputs_once(tmp_path):
    s = OrtSession(tiny_onnx(tmp_path / "m.onnx"), threads=1, batch=3)
    assert s.input_shape == (3, 2, 4, 4) and s.dtype == "float32"
    before = s._outputs[0].numpy().copy()
    s()
    after = s._outputs[0]
    assert after.shape() == [3, 3, 4, 4]
    np.testing.assert_array_equal(after.numpy(), before)  # same input, same bound buffer
    half = OrtSession(tiny_onnx(tmp_path / "h.onnx", 1, TensorProto.FLOAT16))
    assert half.input_shape == (1, 2, 4, 4) and half.dtype == "float16"
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(SessionError, match="onnxruntime cannot load"):
        OrtSession(tmp_path / "junk.onnx")


def test_torch_session_runs_the_module():
    import torch

    seen = []
    module = torch.nn.Conv2d(2, 3, 1)
    module.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    TorchSession(module, (2, 2, 4, 4), threads=1)()
    assert seen == [(2, 3, 4, 4)]


def test_one_registry_for_tables_profile_bench_and_the_kit():
    from edgessl.cost.latency import BACKENDS as TABLE_BACKENDS

    assert TABLE_BACKENDS == tuple(BACKENDS) == ("onnxruntime-cpu", "onnxruntime-cuda",
                                                 "torch-cpu", "torch-cuda", "tensorrt")
    assert set(KIT_PROVIDERS.values()) <= set(BACKENDS)
    with pytest.raises(ValueError, match="unknown backend 'npu'"):
        get_backend("npu")
    assert BACKENDS["onnxruntime-cpu"].default_clock(1) == "cpu"
    assert BACKENDS["onnxruntime-cpu"].default_clock(2) == "wall"
    assert BACKENDS["tensorrt"].default_clock(1) == "wall"
    if importlib.util.find_spec("tensorrt") is None:
        assert "TensorRT is not installed" in BACKENDS["tensorrt"].unavailable()
        with pytest.raises(Unavailable, match="backend tensorrt is not available"):
            BACKENDS["tensorrt"].check()


def test_json_files(tmp_path):
    write_json_atomic(str(tmp_path / "a" / "t.json"), {"x": 1})
    assert read_json(str(tmp_path / "a" / "t.json"), "table") == {"x": 1}
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["t.json"]  # no temp file left
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ValueError, match=r"table .*bad.json is not valid JSON \(line 1"):
        read_json(str(tmp_path / "bad.json"), "table")


# ---- one timer, torch-free ---------------------------------------------------------------------
def test_profile_bench_and_kit_share_one_timer(tmp_path):
    """Issue 20 acceptance 2: no second copy of the timer. bench and profile import the
    runtime's functions; the kit, where edgessl is installed, loads the same module objects;
    the bundle ships byte-identical copies of the runtime's files for devices without edgessl."""
    from edgessl.deploy import bench
    from edgessl.profile import bundle, measure

    spec = importlib.util.spec_from_file_location("profile_device", KIT)
    kit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kit)
    rt = kit.load_runtime(str(tmp_path))
    assert rt.timer is timer
    assert rt.timer.time_interleaved is bench.time_interleaved is measure.time_interleaved
    assert rt.timer.measure_chunked is measure.measure_chunked
    assert rt.backends.BACKENDS is BACKENDS
    copied = bundle.copy_runtime(tmp_path / "edgessl_runtime")
    source = Path(timer.__file__).parent
    names = sorted(p.name for p in source.glob("*.py"))
    assert sorted(p.name for p in copied.iterdir()) == names and "timer.py" in names
    for name in names:
        assert (copied / name).read_bytes() == (source / name).read_bytes()


def test_runtime_imports_without_torch_or_edgessl(tmp_path):
    """The device kit's runtime works where ``import torch`` fails (and, as its bundle copy,
    without edgessl): timer, sessions, backends and TensorRT module import and time a model."""
    from edgessl.profile.bundle import copy_runtime

    copy_runtime(tmp_path / "edgessl_runtime")
    model = tiny_onnx(tmp_path / "m.onnx", 1)
    code = f"""
import sys
sys.modules["torch"] = None  # import torch raises ImportError
sys.modules["edgessl"] = None
sys.path.insert(0, {str(tmp_path)!r})
import edgessl_runtime.backends as b, edgessl_runtime.timer as t, edgessl_runtime.trt
s = b.get_backend("onnxruntime-cpu").session({str(model)!r}, threads=1)
times = t.time_interleaved({{"m": s}}, runs=3, rounds=1, warmup=1, clock="cpu")
print(len(times["m"]), b.BACKENDS["torch-cpu"].unavailable())
print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "edgessl")))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "3 PyTorch is not installed"
    assert json.loads(lines[1].replace("'", '"')) == ["edgessl", "torch"]  # the blocked ones
