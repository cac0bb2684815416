"""INT8 export (issue 19): calibrated QDQ models, the accuracy check and its --max-drop failure,
TensorRT's symmetric file, bad input; quantization helpers. Latency tables and the device kit in
INT8 are in tests/test_int8_profile.py."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from edgessl.checkpoint import save_model
from edgessl.data import eval_loader, open_dataset
from edgessl.deploy import int8 as q
from edgessl.deploy import tensorrt as dtrt
from edgessl.deploy.export import export
from edgessl.deploy.int8_export import Int8Options
from edgessl.deploy.onnx import export_onnx, onnx_model, ort_session
from edgessl.deploy.sources import calibrate_bn, sha256_file
from edgessl.errors import BadInput
from edgessl.evaluate import extract_features, knn_accuracy
from edgessl.models import build_network
from edgessl.ops import layers
from edgessl.spaces import get_space

HAS_TRT = importlib.util.find_spec("tensorrt") is not None
NO_TRT = "tensorrt is not importable (needs the tensorrt extra, cuda-python and an NVIDIA GPU)"
RES = 64
FAST = ["--resolution", str(RES), "--calib-images", "8", "--eval-images", "60"]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    """A search-result folder: the smallest mobilenet, BatchNorm set on digits, whose
    checkpoint records the data it was searched on (``meta.data``)."""
    arch = get_space("mobilenet").smallest(128)
    torch.manual_seed(0)
    net = calibrate_bn(build_network(arch).eval(), RES, 32).eval()
    folder = tmp_path_factory.mktemp("result")
    save_model(folder / "best.ckpt", arch, net, {"source": "search", "data": "digits"})
    arch.save(folder / "best.arch.json")
    return folder, net


@pytest.fixture(scope="module")
def exported(result, tmp_path_factory):
    folder, _ = result
    out = tmp_path_factory.mktemp("E")
    report = export(str(folder), out, dynamic_batch=True, resolution=RES,
                    int8=Int8Options(calib_images=8, eval_images=60))
    return out, report


def _int8(report, name="model_int8.onnx"):
    return report["int8"]["files"][name]


def test_int8_model_is_checked_quantized_and_runs_at_batch_1_and_3(exported):
    out, report = exported
    path = out / "model_int8.onnx"
    onnx.checker.check_model(str(path), full_check=True)
    f = _int8(report)
    assert f["batches_run"] == [1, 3]
    assert f["onnx"]["inputs"][0]["shape"] == ["batch", 3, RES, RES]
    assert f["onnx"]["opset"]["ai.onnx"] == 20 == report["opset"]
    assert f["qdq"]["weighted_nodes_int8"] == f["qdq"]["weighted_nodes"] > 10  # every conv
    model = onnx.load(str(path))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    acts = [inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    weights = [inits[n.input[2]] for n in model.graph.node if n.op_type == "DequantizeLinear"
               and n.input[0] in inits and inits[n.input[0]].dtype == np.int8]
    # u8s8: uint8 activations with zero points, int8 symmetric weights per output channel
    assert {a.dtype for a in acts} == {np.dtype(np.uint8)} and any(a != 0 for a in acts)
    assert weights and all(w.dtype == np.int8 and not w.any() and w.size > 1 for w in weights)
    assert f["scheme"]["name"] == "u8s8" and f["rewrites"][
        "ReduceMean(H, W) -> GlobalAveragePool"] >= 1
    # batch 3 gives the three batch-1 results: nothing couples the images
    s = ort_session(path, threads=1)
    x = np.random.default_rng(0).standard_normal((3, 3, RES, RES)).astype(np.float32)
    three = s.run(None, {"input": x})[0]
    ones = np.concatenate([s.run(None, {"input": x[i:i + 1]})[0] for i in range(3)])
    assert three.shape[0] == 3 and np.allclose(three, ones, atol=1e-5)
    on_disk = json.loads((out / "export.json").read_text())
    assert on_disk["files"]["model_int8.onnx"]["sha256"] == sha256_file(path)


def test_calibration_defaults_to_the_data_the_checkpoint_records(exported):
    _, report = exported
    cal = report["int8"]["calibration"]
    assert cal["data"] == "digits" and "meta" in cal["data_from"]
    assert cal["images"] == 8 and cal["split"] == "train" and cal["method"] == "percentile"
    assert report["int8"]["check"]["data"] == "digits"  # --eval-data defaults to it


def test_accuracy_check_matches_pytorch_and_reports_drop_and_cosine(exported, result):
    """The fp32 accuracy the check reports is the PyTorch network's own kNN accuracy on the
    same bank and test images (an independent path: PyTorch features, not onnxruntime);
    the drop is the difference of the two accuracies; cosines are in [-1, 1] and the centred
    one is the stricter."""
    _, report = exported
    _, net = result
    chk = report["int8"]["check"]
    train, test = open_dataset("digits", "train"), open_dataset("digits", "test")
    bank_f, bank_y = extract_features(net, eval_loader(train.head(chk["bank_images"]), RES))
    test_f, test_y = extract_features(net, eval_loader(test.head(chk["test_images"]), RES))
    assert chk["test_images"] == 60 and chk["bank_images"] == len(train)
    assert chk["knn"]["fp32"] == pytest.approx(knn_accuracy(bank_f, bank_y, test_f, test_y),
                                               abs=1 / 60 + 1e-9)
    f = _int8(report)["check"]
    assert f["drop_points"] == pytest.approx(100 * (chk["knn"]["fp32"] - f["knn"]), abs=1e-3)
    assert f["passed"] == (f["drop_points"] <= chk["max_drop"])
    assert -1 <= f["centred_cosine"]["min"] <= f["centred_cosine"]["mean"] <= 1
    assert f["centred_cosine"]["mean"] <= f["feature_cosine"]["mean"] + 1e-9
    assert report["tensorrt_int8"]["ready"] is False and "uint8" in report["tensorrt_int8"][
        "reason"]


def _grey_folder(tmp_path):
    """Flat grey images (about ImageNet's mean, so about 0 once normalised): every range
    calibrated on them is tiny, and real images clip at every layer."""
    folder = tmp_path / "grey" / "a"
    folder.mkdir(parents=True)
    for i in range(2):
        Image.new("RGB", (16, 16), (115, 115, 115)).save(folder / f"{i}.png")
    return folder.parent


def test_max_drop_failure_exits_1_and_keeps_the_report(cli, result, tmp_path):
    """Acceptance 1: calibrated on one flat grey image, INT8 clips every real activation
    (about 14 points lost here); with zero tolerance the export fails (exit 1, one line),
    files and export.json kept."""
    folder, _ = result
    grey = _grey_folder(tmp_path)
    r = cli("export", folder, "--int8", "--calib-data", grey, "--calib-images", "1",
            "--eval-data", "digits", "--max-drop", "0", "--resolution", RES,
            "--eval-images", "200", "--no-reduce-range", "--out", tmp_path / "E")
    assert r.code == 1, r
    assert r.err.startswith("error: INT8 accuracy check failed (model_int8.onnx")
    assert r.err.count("\n") == 1 and "--max-drop 0" in r.err
    report = json.loads((tmp_path / "E" / "export.json").read_text())
    f = report["int8"]["files"]["model_int8.onnx"]
    assert not f["check"]["passed"] and f["check"]["drop_points"] > 0
    assert report["int8"]["calibration"]["images"] == 1
    assert f["weight_bits"] == {"bits": 8, "why": "--no-reduce-range"}
    assert (tmp_path / "E" / "model_int8.onnx").is_file()
    # the same drop passes under a tolerance that covers it: the threshold decides
    r = cli("export", folder, "--int8", "--calib-data", grey, "--calib-images", "1",
            "--eval-data", "digits", "--max-drop", str(f["check"]["drop_points"] + 0.01),
            "--resolution", RES, "--eval-images", "200", "--no-reduce-range",
            "--out", tmp_path / "E2", "--json")
    assert r.code == 0, r
    assert json.loads(r.out)["int8"]["files"]["model_int8.onnx"]["check"]["drop_points"] == \
        f["check"]["drop_points"]


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_int8_tensorrt_without_tensorrt_verifies_then_exits_2(cli, result, tmp_path):
    """Issue 21 acceptance 3: model_int8_trt.onnx (symmetric) is written and verified for
    TensorRT here, trtexec_int8.sh written, then exit 2 with the install hint."""
    folder, _ = result
    out = tmp_path / "E"
    r = cli("export", folder, "--int8", "--tensorrt", *FAST, "--max-drop", "100", "--out", out)
    assert r.code == 2, r
    assert r.err.startswith(f"error: {dtrt.INSTALL_HINT}") and r.err.count("\n") == 1
    report = json.loads((out / "export.json").read_text())
    part = report["tensorrt_int8"]
    assert part["ready"] and part["onnx"] == "model_int8_trt.onnx" and part["engine"] is None
    assert part["checks"]["model_int8_trt.onnx"]["precision"] == "int8"
    dtrt.verify_qdq(out / "model_int8_trt.onnx")  # symmetric INT8, constant scales, ...
    with pytest.raises(Exception, match="uint8 quantization"):
        dtrt.verify_qdq(out / "model_int8.onnx")  # why TensorRT gets its own file
    script = (out / "trtexec_int8.sh").read_text()
    assert "--onnx=model_int8_trt.onnx" in script and "--saveEngine=model_int8.engine" in script
    sym = report["int8"]["files"]["model_int8_trt.onnx"]
    assert sym["scheme"]["name"] == "s8s8" and "knn" in sym["check"]


@pytest.mark.tensorrt
@pytest.mark.skipif(not HAS_TRT, reason=NO_TRT)
def test_int8_tensorrt_engine_builds(result, tmp_path):
    folder, _ = result
    report = export(str(folder), tmp_path, tensorrt=True, resolution=RES,
                    int8=Int8Options(calib_images=8, eval_images=60))
    assert report["tensorrt_int8"]["engine"] == "model_int8.engine"
    assert (tmp_path / "model_int8.engine").stat().st_size > 0


def _folder_of_corrupt_images(tmp_path):
    folder = tmp_path / "corrupt" / "a"
    folder.mkdir(parents=True)
    for i in range(2):
        (folder / f"{i}.png").write_bytes(b"not a png")
    return folder.parent


def _unlabelled(tmp_path):
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (16, 16), (i * 60, 0, 0)).save(folder / f"{i}.png")
    return folder


@pytest.mark.parametrize("args, needle", [
    (["--int8", "--calib-images", "0"], "--calib-images 0"),
    (["--int8", "--max-drop", "-1"], "--max-drop -1"),
    (["--int8", "--calib-method", "kl"], "--calib-method 'kl'"),
    (["--int8", "--eval-images", "0"], "--eval-images 0"),
    (["--int8", "--calib-data", "{empty}"], "holds no images"),
    (["--int8", "--calib-data", "{corrupt}"], "no readable images"),
    (["--int8", "--calib-data", "{unlabelled}"], "has no labels"),
    (["--int8", "--eval-data", "{unlabelled}"], "--eval-data"),
    (["--calib-data", "digits"], "--calib-data goes with --int8"),
    (["--max-drop", "2"], "--max-drop goes with --int8"),
    (["--reduce-range"], "--reduce-range/--no-reduce-range goes with --int8"),
])
def test_bad_int8_input_exits_2_before_exporting(cli, result, tmp_path, args, needle):
    folder, _ = result
    (tmp_path / "empty").mkdir()
    subs = {"{empty}": str(tmp_path / "empty"), "{corrupt}": str(_folder_of_corrupt_images(
        tmp_path)), "{unlabelled}": str(_unlabelled(tmp_path))}
    r = cli("export", folder, *[subs.get(a, a) for a in args], "--out", tmp_path / "E")
    assert r.code == 2, (args, r)
    assert r.err.startswith("error: ") and r.err.count("\n") == 1 and needle in r.err, r.err
    assert "Traceback" not in r.err and not (tmp_path / "E" / "model.onnx").exists()


# ---- helpers -------------------------------------------------------------------------------
def _block(kind: str):
    """(module, input shape, real inputs (N, 1, C, H, W)): the stem of the smallest mobilenet
    on real images, or its first squeeze-excite h-swish block on that network's real
    activations (the images through the layers before it)."""
    torch.manual_seed(0)
    net = calibrate_bn(build_network(get_space("mobilenet").smallest(128)).eval(), 128, 16)
    k = 0 if kind == "stem" else next(
        i for i, m in enumerate(net.features) if isinstance(getattr(m, "se", None),
                                                            layers.SqueezeExcite)
        and any(isinstance(a, torch.nn.Hardswish) for a in m.modules()))
    with torch.no_grad():
        x = net.features[:k](torch.from_numpy(q.calibration_images("digits", 6, 128)))
    return net.features[k].eval(), (1, *x.shape[1:]), x.numpy()[:, None]


def _graph(path):
    """The QDQ graph's structure: every node's op type and inputs, without the values."""
    model = onnx.load(str(path))
    return [(n.op_type, tuple(n.input), tuple(n.output)) for n in model.graph.node]


@pytest.mark.parametrize("kind", ["stem", "se"])
def test_graph_does_not_depend_on_calibration_values(tmp_path, kind):
    """Why latency tables calibrate blocks on random inputs: the QDQ graph quantize_static
    writes (hence what onnxruntime runs, hence the timing) is the same for seeded normal
    inputs and for real activations, while the scales differ."""
    module, shape, real = _block(kind)
    model = onnx_model(module, shape)
    q.quantize_model(model, tmp_path / "rand.onnx", q.random_calibration(shape))
    q.quantize_model(model, tmp_path / "real.onnx", real)
    assert _graph(tmp_path / "rand.onnx") == _graph(tmp_path / "real.onnx")

    def scales(name):
        return [onnx.numpy_helper.to_array(i) for i in onnx.load(str(tmp_path / name))
                .graph.initializer if i.name.endswith("_scale")]

    assert any(not np.allclose(a, b) for a, b in zip(scales("rand.onnx"), scales("real.onnx"),
                                                     strict=True))


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_histogram_calibration_prints_nothing(tmp_path, capfd, method):
    """onnxruntime's histogram calibrators print progress lines; ``export --json`` must stay
    one JSON line, so quantize_model holds them back."""
    module, shape, real = _block("se")
    q.quantize_model(onnx_model(module, shape), tmp_path / "q.onnx", real, method=method)
    assert (tmp_path / "q.onnx").is_file()
    assert capfd.readouterr().out == ""


def test_keep_float_leaves_the_named_convs_in_fp32(tmp_path):
    """quantize_model's keep_float (benchmarks/int8_variants.py's mixed precision) reaches
    quantize_static: excluded depthwise convs keep float weights, every other conv reads its
    weights through DequantizeLinear; without it every conv does."""
    torch.manual_seed(0)
    model = onnx_model(build_network(get_space("mobilenet").smallest(128)).eval(),
                       (1, 3, RES, RES))
    dw = {n.name for n in model.graph.node if n.op_type == "Conv"
          and next((a.i for a in n.attribute if a.name == "group"), 1) > 1}
    assert dw
    x = q.random_calibration((1, 3, RES, RES))

    def float_convs(path):
        g = onnx.load(str(path)).graph
        dq = {o for n in g.node if n.op_type == "DequantizeLinear" for o in n.output}
        return {n.name for n in g.node if n.op_type == "Conv" and n.input[1] not in dq}

    info = q.quantize_model(model, tmp_path / "full.onnx", x)
    # the default (percentile) cannot bin this random-init network's activations: minmax
    assert info["calibration_method"] == "minmax"
    assert info["calibration_fallback"].startswith("percentile failed (Too many bins")
    q.quantize_model(model, tmp_path / "mixed.onnx", x, keep_float={"nodes_to_exclude": list(dw)})
    assert float_convs(tmp_path / "full.onnx") == set()
    assert float_convs(tmp_path / "mixed.onnx") == dw


def test_pool_rewrite_is_exact(tmp_path):
    module, shape, _ = _block("se")
    model = onnx_model(module, shape)
    rewritten, count = q.pool_rewrite(model)
    assert count >= 1 and "ReduceMean" not in {n.op_type for n in rewritten.graph.node}
    onnx.checker.check_model(rewritten, full_check=True)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    onnx.save(model, str(tmp_path / "a.onnx"))
    onnx.save(rewritten, str(tmp_path / "b.onnx"))
    a = ort_session(tmp_path / "a.onnx").run(None, {"input": x})[0]
    b = ort_session(tmp_path / "b.onnx").run(None, {"input": x})[0]
    assert np.allclose(a, b, atol=1e-5 * max(1.0, np.abs(a).max()))


def test_calibration_images_are_preprocessed_as_evaluation_does():
    images = open_dataset("digits", "train")
    x = q.calibration_images("digits", 5, 32, seed=3)
    idx = np.sort(np.random.default_rng([3, 19]).permutation(len(images))[:5])
    ref = next(iter(eval_loader(images.subset(idx), 32)))[0].numpy()
    assert x.shape == (5, 3, 32, 32) and np.array_equal(x, ref)
    assert len(q.calibration_images("digits", 10_000, 16)) == len(images)  # all, if fewer


def test_int8_options_checked():
    for kwargs, needle in (({"calib_images": 0}, "--calib-images 0"),
                           ({"max_drop": -0.5}, "--max-drop -0.5"),
                           ({"max_drop": float("nan")}, "--max-drop nan"),
                           ({"calib_method": "mse"}, "--calib-method")):
        with pytest.raises(BadInput, match=needle):
            Int8Options(**kwargs).check()


@pytest.mark.parametrize("machine, flags, risk", [
    ("x86_64", {"avx2", "fma"}, True),            # vpmaddubsw: int16 pair sums saturate
    ("x86_64", {"avx2", "avx512_vnni"}, False),
    ("AMD64", {"avx2", "avx_vnni"}, False),
    ("x86_64", None, True),                       # flags unreadable: assume the risk
    ("aarch64", {"asimd", "asimddp"}, False),
])
def test_saturation_risk_follows_the_cpu(monkeypatch, machine, flags, risk):
    monkeypatch.setattr("platform.machine", lambda: machine)
    monkeypatch.setattr(q, "cpu_flags", lambda: flags)
    got, why = q.saturation_risk()
    assert got is risk and why


def _weights(path) -> list[np.ndarray]:
    """The quantized conv weights (int8, 4-D) of a QDQ file."""
    g = onnx.load(str(path)).graph
    arrays = [onnx.numpy_helper.to_array(i) for i in g.initializer]
    return [a for a in arrays if a.dtype == np.int8 and a.ndim == 4]


def test_reduce_range_writes_7_bit_weights_where_the_cpu_would_saturate(tmp_path, monkeypatch):
    """reduce_range reaches quantize_static (weights within [-64, 63] instead of using the
    whole int8 range); by default it follows this CPU for the onnxruntime file (u8s8) and never
    applies to TensorRT's (s8s8); export.json records the bits and why."""
    module, shape, real = _block("stem")
    model = onnx_model(module, shape)
    seven = q.quantize_model(model, tmp_path / "7.onnx", real, reduce_range=True)
    eight = q.quantize_model(model, tmp_path / "8.onnx", real, reduce_range=False)
    assert seven["weight_bits"]["bits"] == 7 and eight["weight_bits"]["bits"] == 8
    assert max(int(np.abs(w).max()) for w in _weights(tmp_path / "7.onnx")) <= 64
    assert max(int(np.abs(w).max()) for w in _weights(tmp_path / "8.onnx")) >= 120
    for risk in (True, False):
        monkeypatch.setattr(q, "saturation_risk", lambda r=risk: (r, "test"))
        auto = q.quantize_model(model, tmp_path / "a.onnx", real)
        assert auto["weight_bits"] == {"bits": 7 if risk else 8, "why": "test"}
        trt = q.quantize_model(model, tmp_path / "t.onnx", real, scheme="s8s8")
        assert trt["weight_bits"]["bits"] == 8


def test_schemes_for_backends():
    assert q.scheme_for("onnxruntime-cpu") == "u8s8"
    assert q.scheme_for("tensorrt") == q.scheme_for("onnxruntime-cuda") == "s8s8"


def test_quantize_model_needs_calibration(tmp_path):
    module, shape, _ = _block("stem")
    export_onnx(module, tmp_path / "m.onnx", shape[-1])
    with pytest.raises(BadInput, match="--calib-images 0"):
        q.quantize_model(onnx.load(str(tmp_path / "m.onnx")), tmp_path / "q.onnx",
                         np.zeros((0, *shape), np.float32))


def test_bench_compares_int8_and_fp32_side_by_side(cli, exported):
    """``bench`` takes the INT8 file like any ONNX and reports each file's precision."""
    out, _ = exported
    r = cli("bench", out / "model.onnx", "--against", out / "model_int8.onnx", "--runs", "3",
            "--rounds", "1", "--warmup", "0", "--threads", "1", "--json")
    assert r.code == 0, r
    rows = json.loads(r.out)["results"]
    assert [x["precision"] for x in rows] == ["fp32", "int8"]
    assert rows[1]["ratio"] == pytest.approx(rows[1]["median_ms"] / rows[0]["median_ms"])
    r = cli("bench", out, "--against", out / "model_int8.onnx", "--runs", "3", "--rounds", "1",
            "--warmup", "0", "--threads", "1")
    assert r.code == 0 and "int8" in r.out and "fp32" in r.out, r
