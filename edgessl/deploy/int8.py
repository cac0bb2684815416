"""INT8 ONNX models: post-training static quantization with onnxruntime's tools, calibrated on
real images, checked by kNN accuracy and feature cosine (not elementwise parity).

How, and why (figures measured on this machine's AMD EPYC, avx512_vnni, onnxruntime 1.32 CPU,
one thread, a random 224 px ``mobilenet`` subnet):

- ``onnxruntime.quantization.quantize_static`` in QDQ format (QuantizeLinear/DequantizeLinear
  around the float ops: the format onnxruntime recommends and TensorRT's explicit quantization
  reads), weights INT8, symmetric, per output channel (BatchNorm-folded depthwise filters
  differ by orders of magnitude between channels; one scale per tensor would flatten the
  small ones).
- Two activation schemes (:data:`SCHEMES`), because the two runtimes want different files:
  ``u8s8`` (``model_int8.onnx``, for onnxruntime CPU): uint8 activations with a zero point,
  onnxruntime's own recommendation for x86 with VNNI. onnxruntime then folds every ReLU into
  the quantization range and fuses DQ-Conv-Q into QLinearConv and DQ-Add-Q into QLinearAdd,
  so the graph stays int8 from end to end. ``s8s8`` (``model_int8_trt.onnx``, for TensorRT):
  int8 symmetric activations (zero points 0, what TensorRT implements) and float biases. On
  onnxruntime CPU that file runs correctly but slowly: a ReLU cannot be folded into a range
  symmetric around 0, so it stays a float op between a DQ and a Q and breaks the int8 chain
  at every block (14.1 ms against 10.2 ms in fp32, where u8s8 took 8.8 ms).
- Calibration: onnxruntime's MinMax (default), Entropy or Percentile calibrators on images
  preprocessed by :func:`edgessl.data.eval_transform` (what evaluation and the search's proxy
  feed the network), collected :data:`CALIB_CHUNK` images at a time
  (``CalibStridedMinMax``) so that memory stays bounded.
- One rewrite first: ReduceMean over H and W with keepdims (torch's ``x.mean((2, 3),
  keepdim=True)``, in every squeeze-excite block) becomes GlobalAveragePool, the same
  operation, for which onnxruntime has an int8 kernel (QLinearGlobalAveragePool): -3.5% time.
- No layer with weights is kept in fp32. Keeping the head after the last global pooling
  (the MobileNet head's 960x1280 feature mix on a 1x1 map) in fp32 looked free by MACs but is
  not: at batch 1 that conv reads its weights once per image, 4.9 MB in fp32 against 1.2 MB
  in INT8, and it cost 0.3 ms of a 2.4 ms subnet at 128 px, for no measurable gain in
  feature cosine (0.99745 against 0.99703 at worst). What onnxruntime has no int8 kernel
  for (HardSwish and HardSigmoid, the float Mul inside HardSwish) runs in float between a
  DQ and a Q; that is onnxruntime's choice, recorded in ``export.json`` (``qdq.ops``).
- Weights get 8 bits, or 7 (onnxruntime's ``reduce_range``) for ``u8s8`` on an x86 CPU
  without VNNI (:func:`saturation_risk`; ``--reduce-range/--no-reduce-range`` overrides):
  there ``vpmaddubsw`` sums pairs of uint8 x int8 products in int16 and saturates. Measured on
  an AVX2-only EPYC: three searched subnets lost 3.6, 3.8 and 4.6 kNN points with 8-bit
  weights (feature cosine 0.96-0.98), 1.4, 0.1 and 0.0 with 7-bit (0.992-0.999).
- ``quant_pre_process`` is not run: the dynamo export already carries every shape with
  BatchNorm folded; preprocessing changed no timing here and only renamed nodes.
"""

from __future__ import annotations

import contextlib
import io
import logging
import platform
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper

from edgessl.deploy.tensorrt import graph_constants
from edgessl.errors import BadInput, RuntimeFailure
from edgessl.runtime.host import cpu_flags
from edgessl.utils import atomic_write

_CALIBRATORS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
CALIB_METHODS = tuple(_CALIBRATORS)  # --calib-method values -> onnxruntime's CalibrationMethod
# Percentile (99.999th, onnxruntime's default) kept INT8 features closest to fp32 on four
# searched networks (median centred cosine 0.986 vs 0.978 for minmax, 0.942 at worst; kNN
# drops all within noise; BENCHMARKS.md, ``int8_calibration``); calibrating takes about 4x
# minmax's time (21 s vs 5 s for 256 images at 224 px). Latency tables keep minmax: their
# timing does not depend on calibration values.
DEFAULT_CALIB_METHOD = "percentile"
DEFAULT_CALIB_DATA = "fashion-mnist-sample"  # built in; the shipped supernet's data
DEFAULT_CALIB_IMAGES = 256
DEFAULT_MAX_DROP = 1.0  # kNN accuracy points
DEFAULT_EVAL_IMAGES, DEFAULT_EVAL_BANK = 1000, 2000
CALIB_CHUNK = 16  # calibration images whose activations are held at once


@dataclass(frozen=True)
class Scheme:
    """How activations are quantized (weights are always INT8, symmetric, per channel)."""

    name: str
    activations: str  # "uint8" (asymmetric, with a zero point) or "int8" (symmetric)
    target: str
    float_bias: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "activations": self.activations,
                "activation_zero_point": "calibrated" if self.activations == "uint8" else 0,
                "weights": "int8, symmetric, per output channel",
                "bias": "float" if self.float_bias else "int32 (scale: input x weight)",
                "format": "QDQ", "target": self.target}


SCHEMES = {
    "u8s8": Scheme("u8s8", "uint8", "onnxruntime (CPU)", float_bias=False),
    "s8s8": Scheme("s8s8", "int8", "TensorRT (explicit quantization)", float_bias=True),
}


def saturation_risk() -> tuple[bool, str]:
    """Whether onnxruntime's u8s8 kernels can saturate on this CPU, and why: x86 without VNNI
    multiplies uint8 by int8 with ``vpmaddubsw``, whose pairwise sums saturate at int16;
    onnxruntime's answer is 7-bit weights (``reduce_range``). VNNI (``vpdpbusd``) and ARM
    accumulate in int32. Measured: three searched subnets on an AVX2-only EPYC lost 3.6-4.6 kNN
    points with 8-bit weights, 0.0-1.4 with 7-bit (BENCHMARKS.md, ``int8_reading``)."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return False, f"{platform.machine()} CPU: int8 products accumulate in int32"
    flags = cpu_flags()
    if flags is None:
        return True, "x86 CPU whose features could not be read: assumed without VNNI"
    vnni = sorted(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})
    if vnni:
        return False, f"x86 CPU with {', '.join(vnni)}: int8 products accumulate in int32"
    return True, ("x86 CPU without VNNI: u8 x s8 pair sums saturate at int16 (vpmaddubsw); "
                  "7-bit weights avoid it")


def scheme_for(backend: str) -> str:
    """The scheme a backend runs fastest and can take: u8s8 for onnxruntime's CPU provider,
    s8s8 (zero points 0) for TensorRT and the CUDA provider."""
    return "u8s8" if backend == "onnxruntime-cpu" else "s8s8"


def check_options(calib_images: int, calib_method: str, max_drop: float = 0.0,
                  eval_images: int = 1) -> None:
    """:class:`BadInput` naming the first unusable INT8 option."""
    if calib_images < 1:
        raise BadInput(f"--calib-images {calib_images} must be at least 1")
    if calib_method not in CALIB_METHODS:
        raise BadInput(f"--calib-method {calib_method!r}: use one of {', '.join(CALIB_METHODS)}")
    if not max_drop >= 0:  # also refuses NaN
        raise BadInput(f"--max-drop {max_drop:g} must be 0 or more (kNN accuracy points)")
    if eval_images < 1:
        raise BadInput(f"--eval-images {eval_images} must be at least 1")


# ---- images --------------------------------------------------------------------------------
def open_images(data: str, split: str, flag: str, val_data: str | None = None):
    """The ImageSet of ``data``/``split``; BadInput (naming ``flag``) when it has no images."""
    from edgessl.data import open_dataset

    try:
        images = open_dataset(data, split, val_data)
    except BadInput as exc:
        raise BadInput(f"{flag} {data}: {exc}") from None
    if len(images) == 0:
        raise BadInput(f"{flag} {data} has no images in its {split} split")
    return images


def iter_batches(images, resolution: int, batch: int = 64) -> Iterator[tuple[np.ndarray,
                                                                           np.ndarray]]:
    """(float32 images (B, 3, R, R), labels) of ``images`` through :func:`eval_transform`
    (resize, centre crop, ImageNet mean/std), unreadable images dropped."""
    from edgessl.data import eval_loader

    done = 0
    for x, y in eval_loader(images, resolution, batch_size=batch):
        keep = images.readable()[done:done + len(x)].numpy()
        done += len(x)
        if keep.any():
            yield x.numpy()[keep].astype(np.float32), y.numpy()[keep]


def calibration_images(data: str, n: int, resolution: int, seed: int = 0,
                       val_data: str | None = None) -> np.ndarray:
    """``n`` (or all, if fewer) seeded random images of the train split of ``data``,
    preprocessed as evaluation does: float32 (n, 3, R, R). BadInput when none is usable."""
    images = open_images(data, "train", "--calib-data", val_data)
    idx = np.sort(np.random.default_rng([seed, 19]).permutation(len(images))[:n])
    parts = [x for x, _ in iter_batches(images.subset(idx), resolution)]
    if not parts:
        raise BadInput(f"--calib-data {data}: none of its images could be read")
    return np.concatenate(parts)


def random_calibration(shape: tuple[int, ...], n: int = 4, seed: int = 0) -> np.ndarray:
    """``n`` seeded standard-normal inputs of ``shape``: what latency tables calibrate blocks
    on. Timing depends on the QDQ graph, not on the scales in it, and the graph
    quantize_static writes is decided by op types alone (tests/test_int8.py shows random and
    real calibration give the same graph)."""
    return np.random.default_rng([seed, 8]).standard_normal((n, *shape)).astype(np.float32)


# ---- the graph -----------------------------------------------------------------------------
def pool_rewrite(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """A copy of ``model`` whose ReduceMean nodes over axes (2, 3) of a 4-D tensor with
    keepdims=1 are GlobalAveragePool nodes (same name, input and output); and how many."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    consts = graph_constants(model)
    count = 0
    for i, n in enumerate(list(model.graph.node)):
        if n.op_type != "ReduceMean":
            continue
        axes = consts.get(n.input[1]) if len(n.input) > 1 and n.input[1] else next(
            (np.array(a.ints) for a in n.attribute if a.name == "axes"), None)
        keep = next((a.i for a in n.attribute if a.name == "keepdims"), 1)
        if axes is not None and keep == 1 and sorted(int(a) % 4 for a in axes) == [2, 3] \
                and not any(a.name == "noop_with_empty_axes" and a.i for a in n.attribute):
            model.graph.node.remove(n)
            model.graph.node.insert(i, helper.make_node("GlobalAveragePool", [n.input[0]],
                                                        list(n.output), name=n.name))
            count += 1
    used = {i for n in model.graph.node for i in n.input}
    for init in [i for i in model.graph.initializer if i.name not in used]:
        model.graph.initializer.remove(init)  # the axes of the rewritten ReduceMeans
    return model, count


# ---- quantization --------------------------------------------------------------------------
class _Reader:
    """onnxruntime's CalibrationDataReader protocol over an array of model inputs, with the
    ``set_range`` that strided calibration (a chunk of images at a time) needs."""

    def __init__(self, name: str, inputs: np.ndarray):
        self.name, self.inputs = name, inputs
        self.pos, self.end = 0, len(inputs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.pos >= self.end:
            return None
        self.pos += 1
        return {self.name: self.inputs[self.pos - 1]}

    def __len__(self) -> int:
        return len(self.inputs)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.pos, self.end = start_index, end_index


def _chunk(n: int) -> int:
    """The largest divisor of ``n`` up to CALIB_CHUNK (onnxruntime needs one)."""
    return next(d for d in range(min(CALIB_CHUNK, n), 0, -1) if n % d == 0)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """onnxruntime's quantization tools log advice (pre-processing, ...) on the root logger,
    and its histogram calibrators (entropy, percentile) ``print`` a dozen progress lines to
    stdout, which would break ``edgessl export --json`` output: both are held back."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(previous)


def _input_name(model: onnx.ModelProto) -> str:
    inits = {i.name for i in model.graph.initializer}
    return next(v.name for v in model.graph.input if v.name not in inits)


def weight_bits(scheme: str, reduce_range: bool | None = None) -> dict[str, Any]:
    """The weights' bits for ``scheme`` and why: ``reduce_range`` as given, else 7 where this
    CPU's u8s8 kernels would saturate (:func:`saturation_risk`), never for s8s8 (TensorRT)."""
    sch = SCHEMES[scheme]
    if reduce_range is not None:
        return {"bits": 7 if reduce_range else 8,
                "why": "--reduce-range" if reduce_range else "--no-reduce-range"}
    risk, why = saturation_risk() if sch.activations == "uint8" else (
        False, f"{sch.name} for {sch.target}: no saturation")
    return {"bits": 7 if risk else 8, "why": why}


def quantize_model(model: onnx.ModelProto, out: str | Path, inputs: np.ndarray,
                   scheme: str = "u8s8", method: str = DEFAULT_CALIB_METHOD,
                   keep_float: dict[str, list[str]] | None = None,
                   reduce_range: bool | None = None) -> dict[str, Any]:
    """Quantize ``model`` (fp32 ONNX) with calibration ``inputs`` (N model inputs: shape
    (N, *input shape)) and write the QDQ model to ``out`` atomically; returns what was done
    (scheme, method, weight bits, rewrites) for ``export.json``. ``reduce_range``: 7-bit
    weights; None decides for the u8s8 scheme by :func:`saturation_risk` of this CPU (where
    the accuracy check runs), never for s8s8 (TensorRT). ``keep_float`` (mixed-precision
    experiments, ``benchmarks/int8_variants.py``; export never sets it): quantize_static's
    ``nodes_to_exclude`` and/or ``op_types_to_quantize``. A histogram method (percentile,
    entropy) that cannot bin an activation (a near-constant one, as random-init weights give)
    falls back to minmax, said in ``calibration_fallback``."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    check_options(len(inputs), method)
    sch = SCHEMES[scheme]
    prepared, pools = pool_rewrite(model)
    act = QuantType.QUInt8 if sch.activations == "uint8" else QuantType.QInt8
    bits = weight_bits(scheme, reduce_range)
    reduce_range = bits["bits"] == 7
    extra = {"ActivationSymmetric": sch.activations == "int8", "WeightSymmetric": True,
             "QuantizeBias": not sch.float_bias, "CalibStridedMinMax": _chunk(len(inputs))}
    data = np.ascontiguousarray(inputs, dtype=np.float32)
    fallback = None
    with tempfile.TemporaryDirectory(prefix="edgessl-int8-") as tmp:
        src = Path(tmp) / "fp32.onnx"
        onnx.save_model(prepared, str(src))
        # a histogram method (percentile, entropy) that numpy cannot bin over a (near-)constant
        # activation is retried once with minmax
        for used in dict.fromkeys((method, "minmax")):
            def write(path: Path, used: str = used) -> None:
                quantize_static(str(src), str(path), _Reader(_input_name(prepared), data),
                                quant_format=QuantFormat.QDQ, per_channel=True,
                                reduce_range=reduce_range, activation_type=act,
                                weight_type=QuantType.QInt8,
                                calibrate_method=getattr(CalibrationMethod, _CALIBRATORS[used]),
                                extra_options=extra, **(keep_float or {}))

            try:
                with _quiet():
                    written = atomic_write(out, write)
                break
            except (ValueError, RuntimeError, onnx.checker.ValidationError) as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
                if used == "minmax" or "bins" not in first:
                    raise RuntimeFailure(f"INT8 quantization failed: {first}") from None
                fallback = f"{method} failed ({first}); minmax used"
    written.chmod(0o644)
    return {"scheme": sch.to_dict(), "calibration_method": used,
            **({"calibration_fallback": fallback} if fallback else {}),
            "calibration_inputs": int(len(inputs)),
            "weight_bits": bits,
            "rewrites": {"ReduceMean(H, W) -> GlobalAveragePool": pools},
            "fp32_layers": "none with weights; ops without an int8 kernel in onnxruntime run "
                           "in float between DQ and Q (see qdq.ops)"}


def quantized_bytes(model: onnx.ModelProto, inputs: np.ndarray, scheme: str,
                    method: str = "minmax") -> bytes:
    """:func:`quantize_model` into memory: the QDQ model's bytes (blocks of latency tables)."""
    with tempfile.TemporaryDirectory(prefix="edgessl-int8-") as tmp:
        path = Path(tmp) / "int8.onnx"
        quantize_model(model, path, inputs, scheme, method)
        return path.read_bytes()


def qdq_summary(path: str | Path) -> dict[str, Any]:
    """Q/DQ pairs, op counts, and how many Conv/Gemm/MatMul nodes read quantized weights."""
    model = onnx.load(str(path), load_external_data=False)
    ops: dict[str, int] = {}
    for n in model.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    dq_out = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    weighted = [n for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    return {"ops": dict(sorted(ops.items())),
            "weighted_nodes": len(weighted),
            "weighted_nodes_int8": sum(1 for n in weighted if len(n.input) > 1
                                       and n.input[1] in dq_out)}


def run_batches(path: str | Path, resolution: int, batches: tuple[int, ...]) -> list[int]:
    """Run the model at each batch size on real images (BadInput-free: RuntimeFailure when
    onnxruntime cannot); returns the batches run."""
    from edgessl.deploy.onnx import INPUT_NAME, ort_session
    from edgessl.deploy.sources import sample_images

    session = ort_session(path, threads=1)
    for b in batches:
        x = sample_images(b, resolution)
        try:
            y = session.run(None, {INPUT_NAME: x})[0]
        except Exception as exc:  # onnxruntime's own error types
            raise RuntimeFailure(f"onnxruntime failed on {path} at batch {b}: "
                                 f"{str(exc).splitlines()[0][:300]}") from None
        if y.shape[0] != b or not np.isfinite(y).all():
            raise RuntimeFailure(f"{path} gave {y.shape} (finite: {np.isfinite(y).all()}) "
                                 f"at batch {b}")
    return sorted(set(batches))


# ---- the accuracy check --------------------------------------------------------------------
def _features(sessions: dict[str, Any], images, resolution: int, static: bool,
              progress: Callable[[int], None] | None) -> tuple[dict[str, np.ndarray],
                                                               np.ndarray]:
    from edgessl.deploy.onnx import INPUT_NAME

    feats: dict[str, list[np.ndarray]] = {k: [] for k in sessions}
    labels = []
    for x, y in iter_batches(images, resolution, 32):
        for key, s in sessions.items():
            chunks = [x[i:i + 1] for i in range(len(x))] if static else [x]
            feats[key] += [s.run(None, {INPUT_NAME: c})[0].reshape(len(c), -1) for c in chunks]
        labels.append(y)
        if progress:
            progress(len(y))
    if not labels:
        return {k: np.zeros((0, 0), np.float32) for k in sessions}, np.zeros(0, np.int64)
    return {k: np.concatenate(v) for k, v in feats.items()}, np.concatenate(labels)


def accuracy_check(fp32: str | Path, int8: dict[str, str | Path], data: str, resolution: int,
                   test_images: int = DEFAULT_EVAL_IMAGES, bank_images: int = DEFAULT_EVAL_BANK,
                   max_drop: float = DEFAULT_MAX_DROP, val_data: str | None = None,
                   threads: int = 1,
                   progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """kNN accuracy (k=20, as ``edgessl eval``) of the fp32 file and each INT8 file of
    ``int8`` (name -> path) on the labelled split of ``data`` (bank: the first
    ``bank_images`` of its train split; test: the first ``test_images`` of its test split),
    and the cosine of INT8 vs fp32 features over the test images (plain and centred on the
    mean fp32 feature, see :func:`_pairwise`); ``passed`` per INT8 file: the drop in points
    is at most ``max_drop``."""
    import torch

    from edgessl.deploy.onnx import ort_session
    from edgessl.evaluate import knn_accuracy

    train = open_images(data, "train", "--eval-data", val_data)
    test = open_images(data, "test", "--eval-data", val_data)
    if not (train.labelled and test.labelled):
        raise BadInput(f"--eval-data {data} has no labels: the INT8 check needs labelled "
                       "images (give --eval-data a built-in set or class sub-folders)")
    sessions = {"fp32": ort_session(fp32, threads=threads),
                **{k: ort_session(p, threads=threads) for k, p in int8.items()}}
    shape = sessions["fp32"].get_inputs()[0].shape
    static = isinstance(shape[0], int)
    bank_f, bank_y = _features(sessions, train.head(bank_images), resolution, static, progress)
    test_f, test_y = _features(sessions, test.head(test_images), resolution, static, progress)
    if not len(bank_y) or not len(test_y):
        raise BadInput(f"--eval-data {data}: no readable {'bank' if not len(bank_y) else 'test'}"
                       " images")

    def knn(key: str) -> float:
        return knn_accuracy(torch.from_numpy(bank_f[key]), torch.from_numpy(bank_y),
                            torch.from_numpy(test_f[key]), torch.from_numpy(test_y))

    ref = knn("fp32")
    report: dict[str, Any] = {
        "data": data, "val_data": val_data, "resolution": resolution,
        "bank_images": int(len(bank_y)), "test_images": int(len(test_y)),
        "knn": {"k": 20, "temperature": 0.07, "fp32": round(ref, 6)}, "max_drop": max_drop,
        "files": {}}
    a = test_f["fp32"].astype(np.float64)
    mean = a.mean(0)
    report["fp32_pairwise_cosine"] = round(_pairwise(a), 6)
    for key in int8:
        acc = knn(key)
        b = test_f[key].astype(np.float64)
        drop = 100.0 * (ref - acc)
        report["files"][key] = {
            "knn": round(acc, 6), "drop_points": round(drop, 4),
            "feature_cosine": _cosines(a, b), "centred_cosine": _cosines(a - mean, b - mean),
            "passed": bool(drop <= max_drop + 1e-9)}
    return report


def _cosines(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean and minimum over rows of cos(a_i, b_i)."""
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1),
                                      1e-12)
    return {"mean": round(float(cos.mean()), 6), "min": round(float(cos.min()), 6)}


def _pairwise(a: np.ndarray, n: int = 500) -> float:
    """Mean cosine between the features of different images (of the first ``n``): how much
    of a feature is common to all images. Close to 1, the plain INT8-vs-fp32 cosine is
    close to 1 whatever INT8 does to the part that tells images apart; the centred cosine
    (about the mean fp32 feature) measures that part."""
    x = a[:n] / np.maximum(np.linalg.norm(a[:n], axis=1, keepdims=True), 1e-12)
    if len(x) < 2:
        return 1.0
    sim = x @ x.T
    return float(sim[np.triu_indices(len(x), 1)].mean())


__all__ = ["CALIB_METHODS", "DEFAULT_CALIB_METHOD", "SCHEMES", "Scheme", "scheme_for",
           "saturation_risk", "weight_bits",
           "check_options", "open_images", "iter_batches", "calibration_images",
           "random_calibration", "pool_rewrite", "quantize_model", "quantized_bytes",
           "qdq_summary", "run_batches", "accuracy_check"]
