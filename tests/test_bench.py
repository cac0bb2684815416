"""edgessl bench: side-by-side timing on one backend, one table/JSON with ratios, through the
one runtime (the timer itself is tested in test_runtime.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgessl.deploy import bench as dbench
from edgessl.deploy.export import export
from edgessl.runtime.backends import BACKENDS
from edgessl.spaces import get_space


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("E")
    export("resnet18", d, resolution=32)
    return d


def test_bench_onnx_against_baselines_json(cli, exported):
    """Acceptance 4: one run reports median and p90 for each model."""
    r = cli("bench", exported / "model.onnx", "--against", "resnet18,resnet50", "--runs", 4,
            "--rounds", 2, "--warmup", 1, "--threads", 1, "--json")
    assert r.code == 0, r
    report = json.loads(r.out)
    rows = report["results"]
    assert [row["model"] for row in rows] == [str(exported / "model.onnx"), "resnet18",
                                              "resnet50"]
    assert report["resolution"] == 32 and report["backend"] == "onnxruntime-cpu"
    # one thread on a CPU backend: the thread-CPU clock latency tables use; 2 rounds of 2 runs
    assert report["clock"] == "cpu" and report["rounds"] == 2
    for row in rows:
        assert row["count"] == 4
        assert row["p90_ms"] >= row["median_ms"] >= row["p10_ms"] >= row["min_ms"]
        assert row["p99_ms"] >= row["p90_ms"]
        assert row["throughput_ips"] == pytest.approx(1e3 / row["median_ms"])
    assert rows[0]["ratio"] == 1.0
    assert rows[2]["ratio"] == pytest.approx(rows[2]["median_ms"] / rows[0]["median_ms"])


def test_bench_torch_table(cli, tmp_path, exported):
    arch = get_space("mobilenet").sample(np.random.default_rng(0), 128)
    arch.save(tmp_path / "a.json")
    r = cli("bench", tmp_path / "a.json", "--backend", "torch-cpu", "--against", "mobilenet_v2",
            "--runs", 3, "--warmup", 0, "--resolution", 64)
    assert r.code == 0, r
    assert "mobilenet_v2" in r.out and "median ms" in r.out and "1.00x" in r.out


def test_export_folder_is_a_model(exported):
    target = dbench.resolve_target(str(exported))
    assert target.kind == "onnx" and target.resolution == 32


def test_bench_uses_the_runtime_registry_and_timer():
    """No second copy: bench's backends are the registry's, its timer is the runtime's."""
    from edgessl.runtime import timer

    assert dbench.time_interleaved is timer.time_interleaved
    assert dbench.summarize is timer.summarize
    assert dbench.get_backend("torch-cpu") is BACKENDS["torch-cpu"]
    assert dbench.accepts(BACKENDS["onnxruntime-cpu"]) == ("onnx", "module")
    assert dbench.accepts(BACKENDS["tensorrt"]) == ("onnx", "engine", "module")


def test_throughput_uses_the_models_real_batch(exported, tmp_path):
    """A batch-2 ONNX file benched at --batch 2: throughput is 2 images per median call."""
    from edgessl.deploy.onnx import export_onnx
    from edgessl.deploy.sources import resolve_source

    path = export_onnx(resolve_source("resnet18", 32).module, tmp_path / "d.onnx", 32,
                       dynamic_batch=True)
    report = dbench.bench([str(path)], batch=2, threads=1, runs=3, warmup=0, rounds=1)
    row = report["results"][0]
    assert report["resolution"] == 32
    assert row["throughput_ips"] == pytest.approx(2e3 / row["median_ms"])


def test_bench_bad_input(cli, tmp_path, exported):
    cases = [
        (["nope.onnx"], "nope.onnx"),
        (["resnet99"], "resnet99"),
        ([exported / "model.onnx", "--batch", "2"], "fixed batch of 1"),
        ([exported / "model.onnx", "--resolution", "64"], "--resolution 64"),
        ([exported / "model.onnx", "--backend", "torch-cpu"], "cannot run an ONNX file"),
        (["resnet18", "--backend", "nope"], "unknown backend"),
        (["resnet18", "--against", "resnet18"], "appears twice"),
        (["resnet18", "--runs", "1"], "--runs 1"),
        (["resnet18", "--rounds", "0"], "--rounds 0"),
        (["resnet18", "--clock", "sundial"], "'sundial'"),
    ]
    (tmp_path / "junk.onnx").write_text("not onnx")
    cases.append(([tmp_path / "junk.onnx"], "junk.onnx"))
    for backend in ("onnxruntime-cuda", "torch-cuda", "tensorrt"):
        if BACKENDS[backend].unavailable():
            cases.append((["resnet18", "--backend", backend], f"backend {backend} is not "
                                                               "available"))
    for args, needle in cases:
        r = cli("bench", *args)
        assert r.code == 2, (args, r)
        assert r.err.startswith("error: ") and r.err.count("\n") == 1, (args, r.err)
        assert needle in r.err, (args, r.err)


@pytest.mark.parametrize("args, needle", [
    (["resnet18", "--threads", "0"], "--threads 0"),
    (["resnet18", "--warmup", "-1"], "--warmup -1"),
    (["{junk}"], "junk.ckpt is truncated or not a checkpoint"),
    (["{tmp}"], "not an edgessl search result"),
    (["resnet18", "--resolution", "0"], "--resolution 0"),
])
def test_more_bench_bad_input(cli, tmp_path, args, needle):
    (tmp_path / "junk.ckpt").write_text("a text file, not a checkpoint")
    subs = {"{junk}": str(tmp_path / "junk.ckpt"), "{tmp}": str(tmp_path)}
    r = cli("bench", *[subs.get(a, a) for a in args])
    assert r.code == 2 and needle in r.err, (args, r)
    assert r.err.startswith("error: ") and r.err.count("\n") == 1 and r.out == "", r
