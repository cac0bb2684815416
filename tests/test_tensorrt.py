"""TensorRT: what it consumes (fp32, fp16, INT8 QDQ) is checked here without it; the build plan
and trtexec lines for 10.x and 11.x; engines are built and timed where TensorRT imports
(``pytest -m tensorrt`` on a machine with TensorRT 10.x or 11.x, cuda-python and a GPU)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from edgessl.deploy import tensorrt as dtrt
from edgessl.deploy.export import tensorrt_int8
from edgessl.deploy.onnx import export_onnx
from edgessl.errors import BadInput, RuntimeFailure

HAS_TRT = importlib.util.find_spec("tensorrt") is not None
NO_TRT = "tensorrt is not importable (needs the tensorrt extra, cuda-python and an NVIDIA GPU)"


def _tiny_onnx(path, batch="batch", opset=20, op="Relu", axes_const=True, domain=""):
    """Conv -> op -> ReduceMean: a minimal graph shaped like our exports."""
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    axes = numpy_helper.from_array(np.array([2, 3], np.int64), "axes")
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node(op, ["c"], ["a"], domain=domain)]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, 8, 8])]
    if axes_const:
        nodes.append(helper.make_node("ReduceMean", ["a", "axes"], ["features"], keepdims=0))
        inits = [w, axes]
    else:
        nodes += [helper.make_node("Shape", ["a"], ["s"]),
                  helper.make_node("ReduceMean", ["a", "s"], ["features"], keepdims=0)]
        inits = [w]
    graph = helper.make_graph(nodes, "g", inputs,
                              [helper.make_tensor_value_info("features", TensorProto.FLOAT,
                                                             None)], inits)
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain
                                                 else [])
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    return path


def test_profile_dynamic_and_static(tmp_path):
    p = dtrt.profile_for(_tiny_onnx(tmp_path / "d.onnx"), opt_batch=4, max_batch=32)
    assert (p.input, p.min, p.opt, p.max) == ("input", (1, 3, 8, 8), (4, 3, 8, 8),
                                              (32, 3, 8, 8))
    s = dtrt.profile_for(_tiny_onnx(tmp_path / "s.onnx", batch=1), max_batch=32)
    assert s.min == s.opt == s.max == (1, 3, 8, 8)
    with pytest.raises(BadInput):
        dtrt.profile_for(tmp_path / "d.onnx", opt_batch=64, max_batch=32)


def test_verify_accepts_our_graph(tmp_path):
    path = _tiny_onnx(tmp_path / "ok.onnx")
    report = dtrt.verify_for_tensorrt(path, dtrt.profile_for(path))
    assert report["opset"] == 20 and set(report["ops"]) <= dtrt.TRT_ONNX_OPS
    assert report["shape"] == ["batch", 3, 8, 8]


@pytest.mark.parametrize("kwargs, needle", [
    ({"op": "NonMaxSuppression"}, "NonMaxSuppression"),  # not in our allow-list
    ({"op": "Gelu2", "domain": "com.example"}, "com.example::Gelu2"),
    ({"opset": 25}, "opset 25"),
    ({"axes_const": False}, "computed axes"),
])
def test_verify_rejects(tmp_path, kwargs, needle):
    path = _tiny_onnx(tmp_path / "bad.onnx", **kwargs)
    with pytest.raises(RuntimeFailure, match=needle):
        dtrt.verify_for_tensorrt(path)


def test_verify_rejects_profile_that_does_not_fit(tmp_path):
    path = _tiny_onnx(tmp_path / "ok.onnx")
    wrong = dtrt.Profile("input", (1, 3, 16, 16), (1, 3, 16, 16), (8, 3, 16, 16))
    with pytest.raises(RuntimeFailure, match="ONNX input has 8"):
        dtrt.verify_for_tensorrt(path, wrong)
    renamed = dtrt.Profile("x", (1, 3, 8, 8), (1, 3, 8, 8), (8, 3, 8, 8))
    with pytest.raises(RuntimeFailure, match="profile input 'x'"):
        dtrt.verify_for_tensorrt(path, renamed)


def test_build_plan_per_major_version(tmp_path):
    f32, f16, q = tmp_path / "model.onnx", tmp_path / "model_fp16.onnx", tmp_path / "q.onnx"
    files = {"fp32": f32, "fp16": f16, "int8": q}
    for major in (10, 11):  # strongly typed by default on both: the file sets the precision
        assert dtrt.plan_build(major, "fp16", files) == dtrt.BuildPlan(f16, True)
        assert dtrt.plan_build(major, "fp32", files) == dtrt.BuildPlan(f32, True)
        assert dtrt.plan_build(major, "int8", files) == dtrt.BuildPlan(q, True)
    # 10.x weakly typed: precision flags on the fp32 / QDQ file; 11.x has no such mode
    assert dtrt.plan_build(10, "fp16", files, weakly_typed=True) == dtrt.BuildPlan(
        f32, False, ("fp16",))
    assert dtrt.plan_build(10, "int8", files, weakly_typed=True) == dtrt.BuildPlan(
        q, False, ("int8",))
    with pytest.raises(BadInput, match="strongly typed networks only"):
        dtrt.plan_build(11, "int8", files, weakly_typed=True)
    with pytest.raises(BadInput, match="fp16 ONNX file: export with --fp16"):
        dtrt.plan_build(10, "fp16", {"fp32": f32})


@pytest.mark.parametrize("precision, onnx_file, weak_flag", [
    ("fp16", "model_fp16.onnx", "--fp16"), ("int8", "model_int8.onnx", "--int8"),
    ("fp32", "model.onnx", None)])
def test_trtexec_script_lines_for_10_and_11(tmp_path, precision, onnx_file, weak_flag):
    profile = dtrt.Profile("input", (1, 3, 224, 224), (1, 3, 224, 224), (16, 3, 224, 224))
    files = {"fp32": tmp_path / "model.onnx", "fp16": tmp_path / "model_fp16.onnx",
             "int8": tmp_path / "model_int8.onnx"}
    script = dtrt.write_trtexec_script(tmp_path / "t.sh", profile, files, precision).read_text()
    lines = [line.strip() for line in script.splitlines() if line.strip().startswith("trtexec")]
    trt11, trt10_weak, trt10 = lines
    for line in lines:
        assert "--minShapes=input:1x3x224x224" in line and "--saveEngine=model.engine" in line
        assert "--maxShapes=input:16x3x224x224" in line
    assert f"--onnx={onnx_file}" in trt11 and f"--onnx={onnx_file}" in trt10
    assert "--stronglyTyped" in trt10 and "--stronglyTyped" not in trt11  # a no-op in 11.x
    for flag in ("--fp16", "--int8"):
        assert flag not in trt11 and flag not in trt10
    weak_file = "model_int8.onnx" if precision == "int8" else "model.onnx"
    assert f"--onnx={weak_file}" in trt10_weak and "--stronglyTyped" not in trt10_weak
    assert (weak_flag in trt10_weak) if weak_flag else "--fp16" not in trt10_weak
    heads = [line.split()[0] for line in script.splitlines()[5:]]
    assert heads == ["if", "trtexec", "elif", "trtexec", "else", "trtexec", "fi"]
    assert "TRT_MAJOR:-10}\" -ge 11" in script and "TRT_WEAK:-0}\" = 1" in script


# ---- INT8 from a QDQ file ------------------------------------------------------------------------
class Tiny(nn.Module):
    """Conv-BN-ReLU, depthwise conv, h-swish, pooling, linear: the op kinds of our backbones."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Hardswish(), nn.AdaptiveAvgPool2d(1),
            nn.Flatten(), nn.Linear(8, 4))

    def forward(self, x):
        return self.body(x)


def quantize(src, dst, **extra):
    """``quantize_static`` as TensorRT wants it: QDQ, per-channel, symmetric QInt8 activations
    and weights, float biases; ``extra`` overrides extra_options / keyword arguments."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"input": np.random.default_rng(i).standard_normal(
                (1, 3, 16, 16)).astype(np.float32)} for i in range(4)])

        def get_next(self):
            return next(self.batches, None)

    options = {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False}
    options.update(extra.pop("options", {}))
    kwargs = {"quant_format": QuantFormat.QDQ, "per_channel": True,
              "activation_type": QuantType.QInt8, "weight_type": QuantType.QInt8, **extra}
    quantize_static(str(src), str(dst), Reader(), extra_options=options, **kwargs)
    return dst


@pytest.fixture(scope="module")
def qdq(tmp_path_factory):
    d = tmp_path_factory.mktemp("qdq")
    torch.manual_seed(0)
    fp32 = export_onnx(Tiny().eval(), d / "model.onnx", 16)
    return fp32, quantize(fp32, d / "model_int8.onnx")


def test_qdq_from_quantize_static_is_ready_for_tensorrt(qdq):
    fp32, path = qdq
    report = dtrt.verify_qdq(path)
    assert report["precision"] == "int8" and report["opset"] == 20
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm"} <= set(report["ops"])
    model = onnx.load(str(path))
    dq = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    per_channel = [n for n in dq if any(a.name == "axis" for a in n.attribute)]
    assert len(per_channel) == 3  # the three weights, per output channel
    assert dtrt.onnx_precision(fp32) == "fp32"
    with pytest.raises(RuntimeFailure, match="not an INT8"):
        dtrt.verify_qdq(fp32)


def _edit(path, out, change):
    model = onnx.load(str(path))
    change(model)
    onnx.save(model, str(out))
    return out


def _initializer(model, name):
    return next(i for i in model.graph.initializer if i.name == name)


def _set(model, name, array):
    _initializer(model, name).CopyFrom(numpy_helper.from_array(array, name))


def test_qdq_checks_reject_what_tensorrt_cannot_build(qdq, tmp_path):
    _, path = qdq
    model = onnx.load(str(path))
    act = next(n for n in model.graph.node if n.op_type == "QuantizeLinear")
    weight_dq = next(n for n in model.graph.node if n.op_type == "DequantizeLinear"
                     and any(a.name == "axis" for a in n.attribute))
    cases = {
        r"zero point \[3\] is not 0": lambda m: _set(m, act.input[2], np.array(3, np.int8)),
        "per-channel scales on an activation": lambda m: _set(
            m, act.input[1], np.full(2, 0.1, np.float32)),
        "scales must be positive": lambda m: _set(m, act.input[1], np.array(0.0, np.float32)),
        "along the output channels": lambda m: next(
            a for a in next(n for n in m.graph.node if n.name == weight_dq.name).attribute
            if a.name == "axis").__setattr__("i", 1),
        "is not a constant": lambda m: m.graph.initializer.remove(
            _initializer(m, act.input[1])),
        "need opset >= 13": lambda m: m.opset_import[0].__setattr__("version", 12),
    }
    for i, (needle, change) in enumerate(cases.items()):
        bad = _edit(path, tmp_path / f"bad{i}.onnx", change)
        with pytest.raises(RuntimeFailure, match=needle):
            dtrt.verify_qdq(bad)


def test_qdq_rejects_asymmetric_and_int32_bias_quantization(qdq, tmp_path):
    from onnxruntime.quantization import QuantType

    fp32, _ = qdq
    asym = quantize(fp32, tmp_path / "asym.onnx", activation_type=QuantType.QUInt8,
                    options={"ActivationSymmetric": False})
    with pytest.raises(RuntimeFailure, match="uint8 quantization; TensorRT takes INT8 only"):
        dtrt.verify_qdq(asym)
    bias = quantize(fp32, tmp_path / "bias.onnx", options={"QuantizeBias": True})
    with pytest.raises(RuntimeFailure, match="int32 quantization.*QuantizeBias=False"):
        dtrt.verify_qdq(bias)


def test_int8_tensorrt_part_verifies_then_needs_tensorrt(qdq, tmp_path):
    """Issue 21 acceptance 3: the QDQ file is verified here, then building without TensorRT is
    bad input (exit 2) with the install hint; a file TensorRT would refuse fails first."""
    _, path = qdq
    part = tensorrt_int8(path.parent, path)
    assert part["ready"] and part["checks"]["model_int8.onnx"]["precision"] == "int8"
    script = (path.parent / "trtexec_int8.sh").read_text()
    assert "--onnx=model_int8.onnx" in script and "--saveEngine=model_int8.engine" in script
    if not HAS_TRT:
        with pytest.raises(BadInput) as exc:
            tensorrt_int8(path.parent, path, build=True)
        assert str(exc.value) == dtrt.INSTALL_HINT
    broken = _edit(path, tmp_path / "model_int8.onnx",
                   lambda m: m.opset_import[0].__setattr__("version", 12))
    with pytest.raises(RuntimeFailure, match="opset >= 13"):
        tensorrt_int8(tmp_path, broken, build=True)


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_cli_tensorrt_missing(cli, tmp_path):
    r = cli("export", "resnet18", "--tensorrt", "--out", tmp_path / "E")
    assert r.code == 2
    assert r.err == f"error: {dtrt.INSTALL_HINT}\n"
    assert not (tmp_path / "E").exists()  # refused before any work
    r = cli("bench", "resnet18", "--backend", "tensorrt")
    assert r.code == 2 and "backend tensorrt is not available" in r.err
    assert r.err.count("\n") == 1


# ---- with TensorRT (pytest -m tensorrt) -------------------------------------------------------
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
@pytest.mark.tensorrt
@pytest.mark.skipif(not HAS_TRT, reason=NO_TRT)
def test_build_and_run_engines(tmp_path, qdq, precision):
    """fp32, fp16 (strongly typed from the fp16 file) and INT8 (from the QDQ file) engines build
    on the installed TensorRT, run on a private stream, and report their input."""
    from edgessl.runtime.trt import TrtSession

    fp32, q = qdq
    files = {"fp32": fp32, "int8": q}
    if precision == "fp16":
        files["fp16"] = export_onnx(Tiny().eval(), tmp_path / "model_fp16.onnx", 16, fp16=True)
    profile = dtrt.profile_for(files[precision])
    plan = dtrt.plan_build(dtrt.tensorrt_major(), precision, files)
    engine = dtrt.build_engine(plan, profile, tmp_path / f"{precision}.engine")
    session = TrtSession(engine)
    session()
    assert session.input_shape == (1, 3, 16, 16)
    assert session.dtype == ("float16" if precision == "fp16" else "float32")
    session.close()
    assert session.stream is None and session.buffers == []


@pytest.mark.tensorrt
@pytest.mark.skipif(not HAS_TRT, reason=NO_TRT)
def test_engine_batch_outside_profile_names_the_range(tmp_path):
    from edgessl.runtime import SessionError
    from edgessl.runtime.trt import TrtSession

    path = export_onnx(Tiny().eval(), tmp_path / "d.onnx", 16, dynamic_batch=True)
    profile = dtrt.profile_for(path, 1, 4)
    engine = dtrt.build_engine(dtrt.plan_build(dtrt.tensorrt_major(), "fp32", {"fp32": path}),
                               profile, tmp_path / "d.engine")
    assert TrtSession(engine, batch=3).input_shape == (3, 3, 16, 16)
    with pytest.raises(SessionError, match=r"batch 8 is outside the engine's profile \(batch 1"
                                           r"\.\.4\)"):
        TrtSession(engine, batch=8)


@pytest.mark.tensorrt
@pytest.mark.skipif(not HAS_TRT, reason=NO_TRT)
def test_bench_engine_checks_batch_and_resolution(cli, tmp_path):
    r = cli("export", "resnet18", "--resolution", 64, "--dynamic-batch", "--fp16", "--tensorrt",
            "--max-batch", 4, "--out", tmp_path, "--json")
    assert r.code == 0, r
    report = json.loads(r.out)
    assert report["tensorrt"]["engine"] == "model.engine"
    assert report["tensorrt"]["built_from"] == "model_fp16.onnx"
    r = cli("bench", tmp_path / "model.engine", "--backend", "tensorrt", "--batch", 3,
            "--runs", 3, "--json")
    assert r.code == 0, r
    row = json.loads(r.out)["results"][0]
    assert row["throughput_ips"] == pytest.approx(3e3 / row["median_ms"])
    r = cli("bench", tmp_path / "model.engine", "--backend", "tensorrt", "--resolution", 32)
    assert r.code == 2 and "takes 64x64 images" in r.err
