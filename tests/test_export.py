"""edgessl export: checker + parity (batch 1 and 3), MACs from the graph, export.json, bad input."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from edgessl.baselines import BASELINES
from edgessl.checkpoint import TRAIN_FORMAT, save_checkpoint, save_model
from edgessl.cost.flops import _baseline_cost
from edgessl.deploy import onnx as donnx
from edgessl.deploy.export import export
from edgessl.deploy.onnx_flops import onnx_macs
from edgessl.deploy.sources import resolve_source, sha256_file
from edgessl.deploy.tensorrt import profile_for, verify_for_tensorrt
from edgessl.models import build_network
from edgessl.spaces import get_space

ARCH_SEEDS = (0, 1)


@pytest.fixture(scope="module")
def arch_exports(tmp_path_factory):
    """Random archs of both spaces at 128 px, dynamic batch; the first mobilenet also fp16."""
    out = {}
    for space in ("mobilenet", "resnet"):
        for seed in ARCH_SEEDS:
            arch = get_space(space).sample(np.random.default_rng(seed), 128)
            d = tmp_path_factory.mktemp(f"{space}{seed}")
            arch.save(d / "arch.json")
            fp16 = space == "mobilenet" and seed == 0
            report = export(str(d / "arch.json"), d / "E", dynamic_batch=True, fp16=fp16)
            out[(space, seed)] = (arch, d / "E", report)
    return out


@pytest.fixture(scope="module")
def baseline_exports(tmp_path_factory):
    out = {}
    for name in BASELINES:
        d = tmp_path_factory.mktemp(name)
        out[name] = (d, export(name, d, resolution=64))
    return out


def _assert_verified(folder, report, batches):
    for name, parity in report["parity"].items():
        onnx.checker.check_model(str(folder / name), full_check=True)
        assert parity["passed"], parity
        assert parity["batches"] == batches
        assert parity["max_abs_reference"] > 0.01  # calibrated BN: not vacuous (~1e-9 without)
    on_disk = json.loads((folder / "export.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    for fname, meta in on_disk["files"].items():
        assert sha256_file(folder / fname) == meta["sha256"]


@pytest.mark.parametrize("space", ["mobilenet", "resnet"])
@pytest.mark.parametrize("seed", ARCH_SEEDS)
def test_arch_export_dynamic_batch(arch_exports, space, seed):
    arch, folder, report = arch_exports[(space, seed)]
    _assert_verified(folder, report, [1, 3])
    shape = report["onnx"]["model.onnx"]["inputs"][0]["shape"]
    assert shape == [donnx.BATCH_DIM, 3, 128, 128]
    assert report["source"]["model"]["arch"] == arch.to_dict()
    assert report["opset"] == 20 == report["onnx"]["model.onnx"]["opset"]["ai.onnx"]


@pytest.mark.parametrize("space", ["mobilenet", "resnet"])
@pytest.mark.parametrize("seed", ARCH_SEEDS)
def test_onnx_macs_equal_analytic(arch_exports, space, seed):
    """Acceptance 2: the exported backbone has no classifier, so it is compared with the
    analytic count without one (``num_classes=0``)."""
    arch, folder, report = arch_exports[(space, seed)]
    counted = onnx_macs(folder / "model.onnx")
    analytic = get_space(space).cost(arch, num_classes=0)[0]
    assert abs(counted - analytic) <= 0.005 * analytic
    assert report["macs"]["match"] is True
    # the fp16 graph is the same network
    if (folder / "model_fp16.onnx").exists():
        assert onnx_macs(folder / "model_fp16.onnx") == counted


def test_fp16_model(arch_exports):
    _, folder, report = arch_exports[("mobilenet", 0)]
    desc = report["onnx"]["model_fp16.onnx"]
    assert desc["inputs"][0]["dtype"] == "float16" and desc["outputs"][0]["dtype"] == "float16"
    parity = report["parity"]["model_fp16.onnx"]
    assert parity["dtype"] == "float16" and parity["passed"]
    assert parity["tolerance"] == pytest.approx(
        donnx.FP16_TOL * max(1.0, parity["max_abs_reference"]))
    # fp16 really differs from fp32 (it is not the fp32 file under another name)
    assert parity["max_abs_diff"] > report["parity"]["model.onnx"]["max_abs_diff"]


@pytest.mark.parametrize("space", ["mobilenet", "resnet"])
def test_tensorrt_inputs_verified(arch_exports, space):
    """What TensorRT consumes: shapes, profile, opset and ops of every exported file."""
    _, folder, report = arch_exports[(space, 0)]
    trt = report["tensorrt"]
    assert trt["ready"] and (folder / "trtexec.sh").exists()
    assert trt["profile"]["min"] == [1, 3, 128, 128] and trt["profile"]["max"][0] == 16
    for name in report["parity"]:
        verify_for_tensorrt(folder / name, profile_for(folder / name, 1, 16))


@pytest.mark.parametrize("name", list(BASELINES))
def test_every_baseline_exports(baseline_exports, name):
    folder, report = baseline_exports[name]
    _assert_verified(folder, report, [1, 1, 1])
    assert report["onnx"]["model.onnx"]["inputs"][0]["shape"] == [1, 3, 64, 64]
    # graph MACs + a 1000-class classifier = the published-convention count at 64 px
    feature_dim = BASELINES[name].feature_dim
    counted = onnx_macs(folder / "model.onnx") + feature_dim * 1000
    assert abs(counted - _baseline_cost(name, 64)[0]) <= 0.005 * counted
    verify_for_tensorrt(folder / "model.onnx", profile_for(folder / "model.onnx"))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BASELINES))
def test_every_baseline_exports_at_224(tmp_path, name):
    report = export(name, tmp_path, dynamic_batch=True)
    _assert_verified(tmp_path, report, [1, 3])
    assert report["onnx"]["model.onnx"]["inputs"][0]["shape"][1:] == [3, 224, 224]


def test_cli_export_mobilenet_v2(cli, tmp_path):
    r = cli("export", "mobilenet_v2", "--onnx", "--out", tmp_path / "E", "--resolution", 64,
            "--json")
    assert r.code == 0, r
    report = json.loads(r.out)
    assert report["parity"]["model.onnx"]["passed"]
    onnx.checker.check_model(str(tmp_path / "E" / "model.onnx"))
    assert "trtexec --onnx=model.onnx" in (tmp_path / "E" / "trtexec.sh").read_text()


def test_result_folder_and_checkpoint(cli, tmp_path):
    arch = get_space("resnet").smallest(128)
    net = build_network(arch).eval()
    res = tmp_path / "result"
    save_model(res / "best.ckpt", arch, net)
    arch.save(res / "best.arch.json")
    r = cli("export", res, "--out", tmp_path / "E", "--json")
    assert r.code == 0, r
    report = json.loads(r.out)
    assert report["source"]["kind"] == "result"
    assert report["source"]["sha256"] == sha256_file(res / "best.ckpt")
    # the checkpoint's own weights are exported (no re-initialisation, no BN calibration)
    src = resolve_source(str(res / "best.ckpt"))
    assert "weights" not in src.origin
    first = next(iter(net.state_dict().values()))
    assert (next(iter(src.module.state_dict().values())) == first).all()
    # a best.arch.json that disagrees with the checkpoint is refused
    get_space("resnet").largest(128).save(res / "best.arch.json")
    r = cli("export", res, "--out", tmp_path / "E2")
    assert r.code == 2 and "does not match" in r.err


def test_opset_18_is_written(tmp_path):
    report = export("resnet18", tmp_path, opset=18, resolution=32)
    assert onnx.load(str(tmp_path / "model.onnx")).opset_import[0].version == 18
    assert report["opset"] == 18


def test_parity_failure_exits_1(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(donnx, "FP32_TOL", 0.0)
    r = cli("export", "resnet18", "--resolution", 32, "--out", tmp_path)
    assert r.code == 1, r
    assert r.err.startswith("error: parity check failed") and r.err.count("\n") == 1
    report = json.loads((tmp_path / "export.json").read_text())
    assert report["parity"]["model.onnx"]["passed"] is False
    assert not report["tensorrt"]["ready"] and not (tmp_path / "trtexec.sh").exists()


def _bad_inputs(tmp_path):
    foreign = tmp_path / "foreign.ckpt"
    import torch

    torch.save({"state_dict": {}}, foreign)
    train = tmp_path / "train.ckpt"
    save_checkpoint(train, {"format": TRAIN_FORMAT})
    (tmp_path / "afile").write_text("x")
    return [
        (["missing.ckpt"], "missing.ckpt"),
        ([str(tmp_path / "nodir") + "/"], "nodir"),
        ([str(foreign)], "foreign.ckpt"),
        ([str(train)], "train.ckpt"),
        (["resnet99"], "resnet99"),
        (["mobilenet_v2", "--opset", "13"], "--opset 13"),
        (["mobilenet_v2", "--opset", "17"], "--opset 17"),
        (["mobilenet_v2", "--opset", "99"], "--opset 99"),
        (["mobilenet_v2", "--resolution", "8"], "--resolution 8"),
        ([str(tmp_path)], "search result"),
    ]


def test_bad_input_exits_2_with_one_line(cli, tmp_path):
    for args, needle in _bad_inputs(tmp_path):
        r = cli("export", *args, "--out", tmp_path / "E")
        assert r.code == 2, (args, r)
        assert r.err.startswith("error: ") and r.err.count("\n") == 1, (args, r.err)
        assert needle in r.err and "Traceback" not in r.err, (args, r.err)
        assert not (tmp_path / "E" / "model.onnx").exists()
    r = cli("export", "resnet18", "--out", tmp_path / "afile")
    assert r.code == 2 and "afile" in r.err


@pytest.mark.parametrize("args, needle", [
    (["{junk}"], "junk.ckpt is truncated or not a checkpoint"),
    (["{onnx}"], "is an ONNX file"),
    (["mobilenet_v2", "--opt-batch", "4"], "--opt-batch 4"),
    (["mobilenet_v2", "--opt-batch", "0"], "--opt-batch 0"),
    (["mobilenet_v2", "--dynamic-batch", "--opt-batch", "20", "--max-batch", "4"],
     "--opt-batch 20"),
])
def test_more_bad_input_exits_2_before_exporting(cli, tmp_path, args, needle):
    (tmp_path / "junk.ckpt").write_text("a text file, not a checkpoint")
    (tmp_path / "m.onnx").write_bytes(b"not onnx")
    subs = {"{junk}": str(tmp_path / "junk.ckpt"), "{onnx}": str(tmp_path / "m.onnx")}
    r = cli("export", *[subs.get(a, a) for a in args], "--out", tmp_path / "E")
    assert r.code == 2 and needle in r.err, (args, r)
    assert r.err.startswith("error: ") and r.err.count("\n") == 1 and r.out == "", r
    assert not (tmp_path / "E").exists()


def test_reused_torchlib_registry_writes_the_same_model_and_leaks_nothing():
    """onnx_model builds the exporter's ATen->ONNX registry once and hands out copies: the file
    must equal what torch's own path writes, a copy mutated by one caller (as a
    custom_translation_table does) must not reach the next, and torch's method is restored."""
    import torch
    from torch.onnx._internal.exporter import _registration

    block = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8),
                                torch.nn.Hardswish(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten()).eval()
    original = _registration.ONNXRegistry.__dict__["from_torchlib"]
    reused = donnx.onnx_model(block, (1, 3, 16, 16))
    assert _registration.ONNXRegistry.__dict__["from_torchlib"] is original
    plain = torch.onnx.export(block, (torch.zeros(1, 3, 16, 16),), dynamo=True,
                              opset_version=donnx.DEFAULT_OPSET, input_names=["input"],
                              output_names=["features"], verbose=False).model_proto
    assert reused.graph.SerializeToString() == plain.graph.SerializeToString()

    with donnx._reused_torchlib_registry():
        first = _registration.ONNXRegistry.from_torchlib(donnx.DEFAULT_OPSET)
        key = next(iter(first.functions))
        first.functions[key].clear()
        first.functions["edgessl::stray"] = []
        second = _registration.ONNXRegistry.from_torchlib(donnx.DEFAULT_OPSET)
    assert second is not first and second.functions[key] and \
        "edgessl::stray" not in second.functions
    assert donnx.onnx_model(block, (1, 3, 16, 16)).graph.SerializeToString() == \
        plain.graph.SerializeToString()
