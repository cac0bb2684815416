"""INT8 latency tables (issue 19): ``profile --dtype int8`` on a tiny sub-space, --check of an
INT8 table, refusals where INT8 and fp32 must not mix, INT8 device-kit bundles, and the search
report's INT8 wording."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import onnx
import pytest

from edgessl.cost.latency import LatencyTable
from edgessl.profile import bundle as pbundle
from edgessl.profile.blocks import Choices, build_module, enumerate_specs, input_shape
from edgessl.spaces import get_space

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_profile_device import run_kit, torchless_env  # noqa: E402

TINY = ["--resolution", "128", "--width-mult", "1.0", "--kernel", "3", "--expand", "3"]
QUICK = ["--runs", "4", "--rounds", "2", "--warmup", "1", "--net-runs", "3"]


@pytest.fixture(scope="module")
def int8_table(tmp_path_factory):
    """A tiny INT8 table measured here (25 blocks, 2 calibration and 1 held-out subnet)."""
    from edgessl.profile.measure import Settings, profile

    out = tmp_path_factory.mktemp("t8") / "t8.json"
    s = Settings(resolutions=[128], width_mults=[1.0], kernels=[3], expands=[3.0], dtype="int8",
                 runs=4, rounds=2, warmup=1, net_runs=3, calibrate=2, validate=1)
    return profile(s, out), out


def test_int8_table_records_its_quantization_and_validates(int8_table):
    table, path = int8_table
    on_disk = LatencyTable.load(path)
    assert on_disk.meta["dtype"] == "int8" and on_disk.complete
    quant = on_disk.meta["quantization"]
    assert quant["scheme"]["name"] == "u8s8" and quant["scheme"]["activations"] == "uint8"
    from edgessl.deploy.int8 import weight_bits

    assert quant["weight_bits"] == weight_bits("u8s8")  # as export --int8 decides here
    space = get_space("mobilenet")
    specs = enumerate_specs(space, Choices.of(space, [128], [1.0], [3], [3.0]))
    assert set(on_disk.entries) == set(specs)
    assert [n["role"] for n in on_disk.networks].count("validate") == 1
    assert on_disk.validation["held_out"] and on_disk.validation["all"]["n"] == 1
    assert "int8" in on_disk.describe()


def test_blocks_are_timed_as_qdq_models():
    """What ``profile --dtype int8`` times for a block: a QDQ model in the scheme of the
    backend (u8s8 for onnxruntime CPU, s8s8 for TensorRT), every conv on INT8 weights."""
    from edgessl.deploy.bench import model_bytes

    space = get_space("mobilenet")
    spec = space.block(128, 1.0, 1, 0, 3, 3.0)
    module = build_module(spec)
    for backend, act in (("onnxruntime-cpu", onnx.TensorProto.UINT8),
                         ("tensorrt", onnx.TensorProto.INT8)):
        model = onnx.load_from_string(model_bytes(module, input_shape(spec, 1), "int8", backend))
        ops = [n.op_type for n in model.graph.node]
        assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
        inits = {i.name: i for i in model.graph.initializer}
        q = next(n for n in model.graph.node if n.op_type == "QuantizeLinear")
        assert inits[q.input[2]].data_type == act
    fp32 = onnx.load_from_string(model_bytes(module, input_shape(spec, 1)))
    assert "QuantizeLinear" not in {n.op_type for n in fp32.graph.node}


def test_check_an_int8_table_here(cli, int8_table, tmp_path):
    _, path = int8_table
    r = cli("profile", "--check", path, "--subnets", "1", "--json", "--plot", tmp_path / "c.png")
    assert r.code == 0, r
    report = json.loads(r.out)
    assert report["dtype"] == "int8" and report["results"]["all"]["n"] == 1


@pytest.mark.parametrize("args, needle", [
    (["--check", "{t}", "--dtype", "fp32"], "--dtype fp32 does not match the table's dtype "
                                            "'int8'"),
    (["--recalibrate", "{t}", "--dtype", "fp32", "--out", "{new}"], "--dtype fp32 does not "
                                                                    "match"),
    (["--out", "{t}", "--dtype", "fp32", *TINY], "exists with dtype='int8', not 'fp32'"),
    (["--out", "{new}", "--dtype", "int8", "--backend", "torch-cpu", *TINY],
     "--dtype int8 needs an ONNX backend"),
    (["--out", "{new}", "--dtype", "int4", *TINY], "--dtype 'int4'"),
])
def test_int8_and_fp32_do_not_mix(cli, int8_table, tmp_path, args, needle):
    _, path = int8_table
    subs = {"{t}": str(path), "{new}": str(tmp_path / "new.json")}
    r = cli("profile", *[subs.get(a, a) for a in args])
    assert r.code == 2, (args, r)
    assert r.err.startswith("error: ") and r.err.count("\n") == 1 and needle in r.err, r.err
    assert not (tmp_path / "new.json").exists()


def test_an_fp32_table_is_not_resumed_as_int8(cli, tmp_path):
    fp32 = tmp_path / "fp32.json"
    LatencyTable({"format": "edgessl-latency/1", "space": "mobilenet",
                  "backend": "onnxruntime-cpu", "threads": 1, "batch": 1, "dtype": "fp32",
                  "clock": "cpu", "resolutions": [128], "complete": False,
                  "choices": Choices.of(get_space("mobilenet"), [128], [1.0], [3],
                                        [3.0]).to_dict()}, {}).save(fp32)
    r = cli("profile", "--out", fp32, "--dtype", "int8", *TINY)
    assert r.code == 2 and "exists with dtype='fp32', not 'int8'" in r.err, r


@pytest.fixture
def few_specs(monkeypatch):
    """Bundle three blocks only (no subnets): what is checked is how they are written."""
    real = pbundle.enumerate_specs

    def three(space, choices):
        specs = real(space, choices)
        return {k: specs[k] for k in sorted(specs)[:3]}

    monkeypatch.setattr(pbundle, "enumerate_specs", three)


def test_int8_bundle_measured_by_the_kit(cli, tmp_path, few_specs):
    bundle = tmp_path / "kit"
    r = cli("profile", "--bundle", bundle, "--dtype", "int8", *TINY, *QUICK, "--json")
    assert r.code == 0, r
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["dtype"] == "int8" and manifest["quantization"]["scheme"]["name"] == "u8s8"
    for e in manifest["entries"]:
        ops = {n.op_type for n in onnx.load(str(bundle / e["file"])).graph.node}
        assert "QuantizeLinear" in ops, e
    env = torchless_env(tmp_path)
    done = run_kit(bundle, tmp_path / "t.json", env)
    assert done.returncode == 0, done.stderr
    raw = json.loads((tmp_path / "t.json").read_text())
    assert raw["dtype"] == "int8" and raw["quantization"] == manifest["quantization"]
    assert len(raw["entries"]) == 3
    refused = run_kit(bundle, tmp_path / "trt.json", env, "--provider", "tensorrt")
    assert refused.returncode == 2 and "u8s8" in refused.stderr
    assert "--backend tensorrt" in refused.stderr and refused.stderr.count("\n") == 1
    assert not (tmp_path / "trt.json").exists()


def test_tensorrt_bundle_is_symmetric(cli, tmp_path, few_specs):
    bundle = tmp_path / "kit"
    r = cli("profile", "--bundle", bundle, "--dtype", "int8", "--backend", "tensorrt", *TINY,
            *QUICK, "--json")
    assert r.code == 0, r
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["quantization"]["scheme"]["name"] == "s8s8"
    assert manifest["quantization"]["weight_bits"]["bits"] == 8  # TensorRT: never 7-bit
    from edgessl.deploy.tensorrt import verify_qdq

    for e in manifest["entries"]:
        verify_qdq(bundle / e["file"])  # what TensorRT builds: symmetric INT8


def test_search_report_says_the_budget_is_int8(tmp_path):
    from edgessl.search.results import Candidate, SearchResult, write_report

    arch = get_space("mobilenet").smallest(224)
    best = Candidate(arch, 0.5, 200.0, 2.0, 4.2)
    info = {"budget": {"max_mflops": 600.0, "max_latency_ms": 5.0, "max_mparams": None},
            "latency_table": "latency_tables/t-int8.json",
            "latency_settings": {"dtype": "int8", "backend": "onnxruntime-cpu", "threads": 1,
                                 "batch": 1, "device": "AMD EPYC"}}
    write_report(tmp_path, SearchResult(best, [best], [best], info))
    text = (tmp_path / "report.md").read_text()
    assert "budget 5 ms of **INT8** inference" in text
    assert "predicted INT8 latency 4.200 ms" in text and "latency ms (INT8)" in text
    info["latency_settings"]["dtype"] = "fp32"
    write_report(tmp_path, SearchResult(best, [best], [best], info))
    assert "INT8" not in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize("risk, bits", [(True, 7), (False, 8)])
def test_int8_table_records_the_weight_bits_this_cpu_gets(monkeypatch, risk, bits):
    """A table made on an x86 CPU without VNNI times 7-bit-weight blocks (what export --int8
    writes there); its metadata says so, since its timings are only claimed for those files."""
    from edgessl.deploy import int8 as q
    from edgessl.profile.measure import quantization

    monkeypatch.setattr(q, "saturation_risk", lambda: (risk, "why"))
    assert quantization("onnxruntime-cpu")["weight_bits"] == {"bits": bits, "why": "why"}
