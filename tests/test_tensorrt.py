"""TensorRT: what it consumes is checked here without it; the build runs where it imports."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgessl.deploy import tensorrt as dtrt
from edgessl.errors import BadInput, RuntimeFailure

HAS_TRT = importlib.util.find_spec("tensorrt") is not None


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
    f32, f16 = tmp_path / "model.onnx", tmp_path / "model_fp16.onnx"
    assert dtrt.plan_build(10, True, f32, f16) == dtrt.BuildPlan(f32, False, True)
    assert dtrt.plan_build(10, False, f32, None) == dtrt.BuildPlan(f32, False, False)
    assert dtrt.plan_build(11, True, f32, f16) == dtrt.BuildPlan(f16, True, False)
    assert dtrt.plan_build(11, False, f32, None) == dtrt.BuildPlan(f32, True, False)
    with pytest.raises(BadInput, match="fp16 ONNX"):
        dtrt.plan_build(11, True, f32, None)


def test_trtexec_script(tmp_path):
    profile = dtrt.Profile("input", (1, 3, 224, 224), (1, 3, 224, 224), (16, 3, 224, 224))
    script = dtrt.write_trtexec_script(tmp_path / "trtexec.sh", profile,
                                       tmp_path / "model.onnx", tmp_path / "model_fp16.onnx",
                                       fp16=True).read_text()
    trt10, trt11 = script.split("else")[1], script.split("else")[0]
    for part in (trt10, trt11):
        assert "--minShapes=input:1x3x224x224" in part
        assert "--maxShapes=input:16x3x224x224" in part and "--saveEngine=model.engine" in part
    assert "--onnx=model.onnx" in trt10 and "--fp16" in trt10
    assert "--onnx=model_fp16.onnx" in trt11 and "--fp16" not in trt11


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_cli_tensorrt_missing(cli, tmp_path):
    r = cli("export", "resnet18", "--tensorrt", "--out", tmp_path / "E")
    assert r.code == 2
    assert r.err == f"error: {dtrt.INSTALL_HINT}\n"
    assert not (tmp_path / "E").exists()  # refused before any work


@pytest.mark.skipif(not HAS_TRT, reason="tensorrt is not importable (needs the tensorrt extra "
                                        "and an NVIDIA GPU)")
def test_build_engine(cli, tmp_path):
    r = cli("export", "resnet18", "--resolution", 64, "--dynamic-batch", "--fp16", "--tensorrt",
            "--max-batch", 4, "--out", tmp_path, "--json")
    assert r.code == 0, r
    report = json.loads(r.out)
    assert report["tensorrt"]["engine"] == "model.engine"
    runner = dtrt.TrtRunner(tmp_path / "model.engine", batch=3)
    runner()
    assert runner.input_shape == (3, 3, 64, 64)
