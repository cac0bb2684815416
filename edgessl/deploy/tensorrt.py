"""TensorRT engines from our ONNX files (fp32, fp16, INT8 from QDQ), and the checks that run
without TensorRT.

TensorRT is an optional extra (``pip install 'edgessl[tensorrt]'``), imported lazily; every call
into its API is in :mod:`edgessl.runtime.trt` (shared with profiling and the device kit).

Build plan (API: NVIDIA/TensorRT ``python/src/infer/pyCore.cpp`` at release/10.0, v10.16 and
v11.1; "Explicit Quantization" and the 10.x-to-11.x migration guide of the TensorRT docs):
- Default on 10.x and 11.x: a strongly typed network
  (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``, from 10.0), so precision comes from the
  ONNX file: ``model.onnx`` (fp32), ``model_fp16.onnx`` (``export --fp16``) or a QDQ file
  (INT8). NVIDIA: "Use explicit quantization with Strong Typing. Precision-control build flags
  are not required and should not be specified." 11.x knows no other mode.
- 10.x weakly typed, only when asked (``weakly_typed=True``; ``TRT_WEAK=1`` in trtexec.sh): the
  fp32 file with ``BuilderFlag.FP16`` for fp16, the QDQ file with ``BuilderFlag.INT8`` (mandatory
  for Q/DQ there). Those flags are deprecated since 10.12 and gone in 11.0; JetPack stays on 10.x.

What TensorRT consumes is verified here without it (:func:`verify_for_tensorrt`): the input
(one NCHW tensor, static C/H/W, batch static or symbolic), the opset, every op in
:data:`TRT_ONNX_OPS` (TensorRT's ONNX parser support matrix, onnx-tensorrt
``docs/operators.md``, restricted to what CNN backbones need), Reduce* axes given as constants,
that the optimisation profile fits the ONNX input, and for a QDQ file (:func:`verify_qdq`) the
quantization TensorRT implements: symmetric INT8 (zero points 0), constant scales, per tensor for
activations and per tensor or per output channel for weights, opset >= 13.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from edgessl.errors import BadInput, RuntimeFailure
from edgessl.utils import atomic_write, atomic_write_text

INSTALL_HINT = ("TensorRT is not installed: pip install 'edgessl[tensorrt]' "
                "(needs an NVIDIA GPU and driver)")
# Opsets TensorRT's ONNX parser accepts: 9..20 from 10.0, 9..24 from 10.15 and in 11.x.
# edgessl exports opset 20 by default, which every 10.x and 11.x parser takes.
TRT_OPSET_RANGE = (9, 24)
TRT_SAFE_OPSET = 20
QDQ_MIN_OPSET = 13  # per-axis (per-channel) Q/DQ: the ``axis`` attribute arrived in opset 13
QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
# ONNX ops (default domain) that TensorRT 10.x/11.x parse (operators.md: "Y"); Q/DQ with INT8,
# zero points 0 (checked by verify_qdq).
TRT_ONNX_OPS = frozenset({
    "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant",
    "ConstantOfShape", "Conv", "DequantizeLinear", "Div", "Dropout", "Expand", "Flatten",
    "Gather", "Gemm", "GlobalAveragePool", "GlobalMaxPool", "HardSigmoid", "HardSwish",
    "Identity", "MatMul", "Max", "MaxPool", "Min", "Mul", "Pad", "QuantizeLinear", "Relu",
    "ReduceMax", "ReduceMean", "ReduceSum", "Reshape", "Resize", "Shape", "Sigmoid", "Slice",
    "Softmax", "Split", "Squeeze", "Sub", "Tanh", "Transpose", "Unsqueeze", "Where",
})
AXES_MUST_BE_CONSTANT = frozenset({"ReduceMax", "ReduceMean", "ReduceSum"})
DEFAULT_WORKSPACE_MB = 1024
PRECISIONS = ("fp32", "fp16", "int8")


def import_tensorrt():
    """The ``tensorrt`` module, or :class:`BadInput` with the install hint."""
    try:
        import tensorrt as trt
    except ImportError:
        raise BadInput(INSTALL_HINT) from None
    return trt


def tensorrt_available() -> str | None:
    """``None`` when TensorRT imports, else the reason it does not."""
    try:
        import_tensorrt()
    except BadInput as exc:
        return str(exc)
    return None


def tensorrt_major() -> int:
    """The installed TensorRT's major version; :class:`BadInput` when it is missing."""
    from edgessl.runtime.trt import major_version

    return major_version(import_tensorrt())


# ---- profile and checks (no TensorRT needed) -------------------------------------------------
@dataclass(frozen=True)
class Profile:
    """One optimisation profile: the input name and its min/opt/max shapes."""

    input: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def shapes(self) -> tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """``(input, min, opt, max)``: what the builder's optimisation profile takes."""
        return self.input, self.min, self.opt, self.max


def _input_dims(model: onnx.ModelProto) -> tuple[str, list[int | str]]:
    inits = {i.name for i in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in inits]
    if len(inputs) != 1:
        raise RuntimeFailure(f"TensorRT profile: expected one graph input, found {len(inputs)}")
    dims = [d.dim_param or int(d.dim_value) for d in inputs[0].type.tensor_type.shape.dim]
    return inputs[0].name, dims


def profile_for(onnx_path: str | Path, opt_batch: int = 1, max_batch: int = 16) -> Profile:
    """The profile for an ONNX file: its static shape, or batch ``1..max_batch`` tuned for
    ``opt_batch`` when the batch dimension is symbolic."""
    name, dims = _input_dims(onnx.load(str(onnx_path), load_external_data=False))
    if any(isinstance(d, str) for d in dims[1:]):
        raise RuntimeFailure(f"{onnx_path}: only the batch dimension may be dynamic, got {dims}")
    rest = tuple(int(d) for d in dims[1:])
    if not isinstance(dims[0], str):
        shape = (int(dims[0]), *rest)
        return Profile(name, shape, shape, shape)
    if not 1 <= opt_batch <= max_batch:
        raise BadInput(f"--opt-batch {opt_batch} must lie in 1..--max-batch ({max_batch})")
    return Profile(name, (1, *rest), (opt_batch, *rest), (max_batch, *rest))


def onnx_precision(model: onnx.ModelProto | str | Path) -> str:
    """'int8' for a QDQ model, 'fp16' for a float16 input, else 'fp32' (what a strongly typed
    build of the file gives)."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model), load_external_data=False)
    if any(n.op_type in QDQ_OPS for n in model.graph.node):
        return "int8"
    inits = {i.name for i in model.graph.initializer}
    elem = [v.type.tensor_type.elem_type for v in model.graph.input if v.name not in inits]
    return "fp16" if elem and elem[0] == onnx.TensorProto.FLOAT16 else "fp32"


def verify_for_tensorrt(onnx_path: str | Path, profile: Profile | None = None) -> dict[str, Any]:
    """Check everything TensorRT will consume; :class:`RuntimeFailure` lists what is wrong.
    A file with Q/DQ nodes is also checked by :func:`verify_qdq`.

    Returns a report (input shape, opset, ops, precision, profile) for ``export.json``.
    """
    model = onnx.load(str(onnx_path), load_external_data=False)
    problems: list[str] = []
    name, dims = _input_dims(model)
    if len(dims) != 4 or any(not isinstance(d, int) or d <= 0 for d in dims[1:]):
        problems.append(f"input {name!r} must be N x C x H x W with static C, H, W; got {dims}")
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    lo, hi = TRT_OPSET_RANGE
    if not lo <= opsets.get("ai.onnx", 0) <= hi:
        problems.append(f"opset {opsets.get('ai.onnx')} outside TensorRT's range {lo}..{hi}")
    constants = graph_constants(model)
    ops = sorted({(n.domain or "ai.onnx", n.op_type) for n in model.graph.node})
    bad_ops = [f"{d}::{op}" if d != "ai.onnx" else op for d, op in ops
               if d != "ai.onnx" or op not in TRT_ONNX_OPS]
    if bad_ops:
        problems.append(f"ops not in the TensorRT allow-list: {', '.join(bad_ops)}")
    for n in model.graph.node:
        if n.op_type in AXES_MUST_BE_CONSTANT and len(n.input) > 1 and n.input[1] \
                and n.input[1] not in constants:
            problems.append(f"{n.op_type} node {n.name!r} takes computed axes (TensorRT needs "
                            "an initializer)")
    precision = onnx_precision(model)
    if precision == "int8":
        problems += _qdq_problems(model, constants)
    if profile is not None:
        problems += _profile_problems(profile, name, dims)
    if problems:
        raise RuntimeFailure(f"{onnx_path} is not ready for TensorRT: {'; '.join(problems)}")
    return {"input": name, "shape": dims, "opset": opsets.get("ai.onnx"),
            "ops": [op for _, op in ops], "precision": precision,
            "profile": profile.to_dict() if profile else None}


def graph_constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Initializers and Constant-node outputs by name, as arrays."""
    out = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            out[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return out


def _output_channel_axis(model: onnx.ModelProto, tensor: str) -> int | None:
    """The output-channel axis of weight ``tensor`` in the op that consumes it (Conv: 0;
    Gemm: 0 with transB, else 1; MatMul: the last), None when it feeds no such op."""
    for n in model.graph.node:
        if n.op_type in ("Conv", "ConvTranspose") and len(n.input) > 1 and n.input[1] == tensor:
            return 1 if n.op_type == "ConvTranspose" else 0
        if n.op_type == "Gemm" and len(n.input) > 1 and n.input[1] == tensor:
            trans_b = next((a.i for a in n.attribute if a.name == "transB"), 0)
            return 0 if trans_b else 1
        if n.op_type == "MatMul" and len(n.input) > 1 and n.input[1] == tensor:
            return -1
    return None


def _qdq_problems(model: onnx.ModelProto, constants: dict[str, np.ndarray]) -> list[str]:
    """What keeps TensorRT from building a QDQ model: see :func:`verify_qdq`."""
    problems = []
    opset = {o.domain or "ai.onnx": o.version for o in model.opset_import}.get("ai.onnx", 0)
    if opset < QDQ_MIN_OPSET:
        problems.append(f"opset {opset}: Q/DQ models need opset >= {QDQ_MIN_OPSET}")
    for n in model.graph.node:
        if n.op_type not in QDQ_OPS:
            continue
        where = f"{n.op_type} {n.name or n.output[0]!r}"
        scale = constants.get(n.input[1]) if len(n.input) > 1 else None
        if scale is None:
            problems.append(f"{where}: scale {n.input[1] if len(n.input) > 1 else '?'!r} is not "
                            "a constant")
            continue
        if not (np.isfinite(scale).all() and (scale > 0).all()):
            problems.append(f"{where}: scales must be positive and finite")
        zp_name = n.input[2] if len(n.input) > 2 and n.input[2] else None
        zero = constants.get(zp_name) if zp_name else np.zeros((), np.int8)
        if zero is None:
            problems.append(f"{where}: zero point {zp_name!r} is not a constant")
        elif zero.dtype != np.int8:
            problems.append(f"{where}: {zero.dtype} quantization; TensorRT takes INT8 only "
                            "(weights and activations QInt8; biases left in float: "
                            "extra_options QuantizeBias=False)")
        elif np.any(zero != 0):
            problems.append(f"{where}: zero point {zero.ravel()[:4].tolist()} is not 0 "
                            "(TensorRT quantizes symmetrically)")
        weight = constants.get(n.input[0]) if n.op_type == "DequantizeLinear" else None
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        if scale.size == 1:
            continue
        if scale.ndim != 1 or weight is None:
            problems.append(f"{where}: per-channel scales on an activation (TensorRT quantizes "
                            "activations per tensor)")
            continue
        want = _output_channel_axis(model, n.output[0])
        axis = axis % weight.ndim
        if want is None or axis != want % weight.ndim or scale.size != weight.shape[axis]:
            expected = "?" if want is None else weight.shape[want]
            problems.append(f"{where}: per-channel weight scales must run along the output "
                            f"channels (axis {want}, {expected} scales); got axis {axis}, "
                            f"{scale.size} scales")
    return problems


def verify_qdq(onnx_path: str | Path) -> dict[str, Any]:
    """Check a QDQ (INT8) ONNX file for TensorRT: everything :func:`verify_for_tensorrt` checks,
    plus Q/DQ nodes present, opset >= 13, symmetric INT8 (zero points 0, int8), constant
    positive scales, per tensor for activations, per tensor or per output channel for weights.
    :class:`RuntimeFailure` lists what is wrong."""
    report = verify_for_tensorrt(onnx_path)
    if report["precision"] != "int8":
        raise RuntimeFailure(f"{onnx_path} has no QuantizeLinear/DequantizeLinear nodes: not an "
                             "INT8 (QDQ) model")
    return report


def _profile_problems(p: Profile, name: str, dims: list[int | str]) -> list[str]:
    out = []
    if p.input != name:
        out.append(f"profile input {p.input!r} != ONNX input {name!r}")
    for label, shape in (("min", p.min), ("opt", p.opt), ("max", p.max)):
        if len(shape) != len(dims):
            out.append(f"profile {label} {shape} has rank {len(shape)}, ONNX input {len(dims)}")
            continue
        for i, (s, d) in enumerate(zip(shape, dims, strict=True)):
            if isinstance(d, int) and s != d:
                out.append(f"profile {label} dim {i} = {s}, ONNX input has {d}")
    if not all(a <= b <= c for a, b, c in zip(p.min, p.opt, p.max, strict=True)):
        out.append(f"profile needs min <= opt <= max, got {p.min} {p.opt} {p.max}")
    return out


# ---- build plan, trtexec line and the build itself -------------------------------------------
@dataclass(frozen=True)
class BuildPlan:
    """Which ONNX file a TensorRT build reads, strongly typed or not, and the 10.x weakly typed
    precision flags ('fp16', 'int8')."""

    onnx: Path
    strongly_typed: bool
    weak_precision: tuple[str, ...] = ()


def plan_build(trt_major: int, precision: str, files: dict[str, Path],
               weakly_typed: bool = False) -> BuildPlan:
    """The build of a ``precision`` engine ('fp32', 'fp16', 'int8') from ``files`` (ONNX path per
    precision: 'fp32' the plain export, 'fp16' the half one, 'int8' the QDQ one); see the
    module doc. :class:`BadInput` when the file it needs is missing or 11.x is asked for a
    weakly typed build."""
    if precision not in PRECISIONS:
        raise BadInput(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if weakly_typed:
        if trt_major >= 11:
            raise BadInput(f"TensorRT {trt_major} builds strongly typed networks only")
        source = "int8" if precision == "int8" else "fp32"
        weak = () if precision == "fp32" else (precision,)
        if source not in files:
            raise BadInput(f"a weakly typed {precision} build needs the {source} ONNX file")
        return BuildPlan(files[source], False, weak)
    if precision not in files:
        hint = {"fp16": "export with --fp16", "int8": "export the QDQ model (--int8)",
                "fp32": "export the fp32 model"}[precision]
        raise BadInput(f"a strongly typed {precision} TensorRT engine is built from the "
                       f"{precision} ONNX file: {hint}")
    return BuildPlan(files[precision], True)


def _shape_arg(name: str, shape: tuple[int, ...]) -> str:
    return f"{name}:{'x'.join(str(s) for s in shape)}"


def trtexec_command(plan: BuildPlan, profile: Profile, engine: str, trt_major: int,
                    workspace_mb: int = DEFAULT_WORKSPACE_MB) -> str:
    """A ``trtexec`` line that reproduces :func:`build_engine` (paths relative to DIR): 10.x
    takes ``--stronglyTyped`` (or ``--fp16``/``--int8`` weakly typed); on 11.x strong typing is
    the only mode (``--stronglyTyped`` is a deprecated no-op there, ``--int8`` is gone)."""
    args = ["trtexec", f"--onnx={plan.onnx.name}",
            f"--minShapes={_shape_arg(profile.input, profile.min)}",
            f"--optShapes={_shape_arg(profile.input, profile.opt)}",
            f"--maxShapes={_shape_arg(profile.input, profile.max)}",
            f"--memPoolSize=workspace:{workspace_mb}M", f"--saveEngine={engine}"]
    if plan.strongly_typed and trt_major < 11:
        args.append("--stronglyTyped")
    args += [f"--{p}" for p in plan.weak_precision]
    return " ".join(shlex.quote(a) for a in args)


def write_trtexec_script(path: Path, profile: Profile, files: dict[str, Path], precision: str,
                         engine: str = "model.engine") -> Path:
    """DIR/trtexec.sh: the build for TensorRT 11.x (``TRT_MAJOR=11``), 10.x (default, strongly
    typed) and 10.x weakly typed (``TRT_WEAK=1``)."""
    def line(major: int, weak: bool) -> str:
        try:
            return "  " + trtexec_command(plan_build(major, precision, files, weak), profile,
                                          engine, major)
        except BadInput as exc:
            return f"  echo {shlex.quote(str(exc))} >&2; exit 2"

    lines = ["#!/bin/sh", f"# Rebuild the {precision} TensorRT engine on the target device "
             "(run in this dir).",
             "# TensorRT 11.x: TRT_MAJOR=11 sh trtexec.sh. 10.x (default): strongly typed;",
             "# TRT_WEAK=1 for the 10.x weakly typed build with precision flags.",
             "set -e", 'if [ "${TRT_MAJOR:-10}" -ge 11 ]; then', line(11, False),
             'elif [ "${TRT_WEAK:-0}" = 1 ]; then', line(10, True), "else", line(10, False),
             "fi", ""]
    atomic_write_text(path, "\n".join(lines))
    path.chmod(0o755)
    return path


def build_engine(plan: BuildPlan, profile: Profile, engine_path: str | Path,
                 workspace_mb: int = DEFAULT_WORKSPACE_MB) -> Path:
    """Build ``plan`` with the profile (:func:`edgessl.runtime.trt.build_serialized`) and
    write the serialized engine atomically. :class:`BadInput` when TensorRT is missing,
    :class:`RuntimeFailure` when it cannot parse or build."""
    from edgessl.runtime import SessionError, Unavailable
    from edgessl.runtime.trt import build_serialized

    import_tensorrt()
    try:
        data = build_serialized(plan.onnx, shapes=profile.shapes(),
                                strongly_typed=plan.strongly_typed,
                                weak_precision=plan.weak_precision, workspace_mb=workspace_mb,
                                verbose=True)
    except Unavailable as exc:
        raise BadInput(str(exc)) from None
    except SessionError as exc:
        raise RuntimeFailure(str(exc)) from None
    path = atomic_write(engine_path, lambda p: p.write_bytes(data))
    path.chmod(0o644)
    return path


def engine_for(onnx_path: Path, batch: int, engine_path: Path) -> Path:
    """A strongly typed engine of ``onnx_path`` for ``batch`` (the file's types fix the
    precision), after :func:`verify_for_tensorrt`: what ``bench --backend tensorrt`` times."""
    profile = profile_for(onnx_path, batch, max(batch, 1))
    verify_for_tensorrt(onnx_path, profile)
    plan = plan_build(tensorrt_major(), onnx_precision(onnx_path),
                      {onnx_precision(onnx_path): onnx_path})
    return build_engine(plan, profile, engine_path)


__all__ = ["INSTALL_HINT", "Profile", "BuildPlan", "import_tensorrt", "tensorrt_available",
           "tensorrt_major", "profile_for", "onnx_precision", "verify_for_tensorrt",
           "verify_qdq", "plan_build", "trtexec_command", "write_trtexec_script",
           "build_engine", "engine_for"]
