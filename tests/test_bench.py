"""edgessl bench: side-by-side timing on one backend, one table/JSON with ratios."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgessl.deploy import bench as dbench
from edgessl.deploy.export import export
from edgessl.spaces import get_space


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("E")
    export("resnet18", d, resolution=32)
    return d


def test_bench_onnx_against_baselines_json(cli, exported):
    """Acceptance 4: one run reports median and p90 for each model."""
    r = cli("bench", exported / "model.onnx", "--against", "resnet18,resnet50", "--runs", 3,
            "--warmup", 1, "--threads", 1, "--json")
    assert r.code == 0, r
    report = json.loads(r.out)
    rows = report["results"]
    assert [row["model"] for row in rows] == [str(exported / "model.onnx"), "resnet18",
                                              "resnet50"]
    assert report["resolution"] == 32 and report["backend"] == "onnxruntime-cpu"
    for row in rows:
        assert row["median_ms"] > 0 and row["p90_ms"] >= row["median_ms"] >= row["min_ms"]
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


def test_interleaved_rounds_rotate():
    calls: list[str] = []
    runners = [lambda n=n: calls.append(n) for n in "abc"]
    times = dbench.time_interleaved(runners, runs=3, warmup=1)
    assert [len(t) for t in times] == [3, 3, 3]
    assert calls == list("abc") + list("abc") + list("bca") + list("cab")


def test_summarize_percentiles():
    s = dbench.summarize([i / 1000 for i in range(1, 101)], batch=4)
    assert s["median_ms"] == pytest.approx(50.5) and s["p90_ms"] == pytest.approx(90.1)
    assert s["p99_ms"] == pytest.approx(99.01) and s["throughput_ips"] == pytest.approx(
        4 / 0.0505)


def test_backends_registry():
    assert set(dbench.BACKENDS) == {"onnxruntime-cpu", "onnxruntime-cuda", "torch-cpu",
                                    "torch-cuda", "tensorrt"}


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
    ]
    (tmp_path / "junk.onnx").write_text("not onnx")
    cases.append(([tmp_path / "junk.onnx"], "junk.onnx"))
    for backend, available in (("onnxruntime-cuda", dbench.BACKENDS["onnxruntime-cuda"]),
                               ("torch-cuda", dbench.BACKENDS["torch-cuda"]),
                               ("tensorrt", dbench.BACKENDS["tensorrt"])):
        if available.unavailable():
            cases.append((["resnet18", "--backend", backend], backend))
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
