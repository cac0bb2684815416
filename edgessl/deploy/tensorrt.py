"""TensorRT engines from our ONNX files, and the checks that can run without TensorRT.

TensorRT is an optional extra (``pip install 'edgessl[tensorrt]'``), imported lazily. Written
against NVIDIA's documented Python API:
- 10.x: ``builder.create_network(0)`` (explicit batch is the only mode), ``trt.OnnxParser``,
  one ``IOptimizationProfile`` (``set_shape(name, min, opt, max)``) for the batch range,
  ``config.set_memory_pool_limit(MemoryPoolType.WORKSPACE, ...)``, ``BuilderFlag.FP16`` for fp16
  (weakly typed: TensorRT picks fp16 kernels where faster, I/O stays fp32),
  ``builder.build_serialized_network`` (``None`` on failure).
- 11.x: every network is strongly typed and the precision flags are gone; fp16 comes from an
  fp16 ONNX file (what ``export --fp16`` writes), built with
  ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` where that flag still exists.

What TensorRT consumes is verified here without it (:func:`verify_for_tensorrt`): the input
(one NCHW tensor, static C/H/W, batch static or symbolic), the opset, every op in
:data:`TRT_ONNX_OPS` (TensorRT's ONNX parser support matrix, onnx-tensorrt
``docs/operators.md``, restricted to what CNN backbones need), Reduce* axes given as constants,
and that the optimisation profile fits the ONNX input.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgessl.errors import BadInput, RuntimeFailure
from edgessl.utils import atomic_write, atomic_write_text

INSTALL_HINT = ("TensorRT is not installed: pip install 'edgessl[tensorrt]' "
                "(needs an NVIDIA GPU and driver)")
# Opsets TensorRT's ONNX parser accepts: 9..20 from 10.0, 9..24 from 10.15 and in 11.x.
# edgessl exports opset 20 by default, which every 10.x and 11.x parser takes.
TRT_OPSET_RANGE = (9, 24)
TRT_SAFE_OPSET = 20
# ONNX ops (default domain) that TensorRT 10.x/11.x parse, fp32 and fp16 (operators.md: "Y").
TRT_ONNX_OPS = frozenset({
    "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant",
    "ConstantOfShape", "Conv", "Div", "Dropout", "Expand", "Flatten", "Gather", "Gemm",
    "GlobalAveragePool", "GlobalMaxPool", "HardSigmoid", "HardSwish", "Identity", "MatMul",
    "Max", "MaxPool", "Min", "Mul", "Pad", "Relu", "ReduceMax", "ReduceMean", "ReduceSum",
    "Reshape", "Resize", "Shape", "Sigmoid", "Slice", "Softmax", "Split", "Squeeze", "Sub",
    "Tanh", "Transpose", "Unsqueeze", "Where",
})
AXES_MUST_BE_CONSTANT = frozenset({"ReduceMax", "ReduceMean", "ReduceSum"})
DEFAULT_WORKSPACE_MB = 1024


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


def verify_for_tensorrt(onnx_path: str | Path, profile: Profile | None = None) -> dict[str, Any]:
    """Check everything TensorRT will consume; :class:`RuntimeFailure` lists what is wrong.

    Returns a report (input shape, opset, ops, profile) for ``export.json``.
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
    constants = {i.name for i in model.graph.initializer}
    constants |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
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
    if profile is not None:
        problems += _profile_problems(profile, name, dims)
    if problems:
        raise RuntimeFailure(f"{onnx_path} is not ready for TensorRT: {'; '.join(problems)}")
    return {"input": name, "shape": dims, "opset": opsets.get("ai.onnx"),
            "ops": [op for _, op in ops],
            "profile": profile.to_dict() if profile else None}


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
    """Which ONNX file and which flags a TensorRT major version builds from."""

    onnx: Path
    strongly_typed: bool
    fp16_flag: bool


def plan_build(trt_major: int, fp16: bool, onnx_fp32: Path, onnx_fp16: Path | None) -> BuildPlan:
    """10.x: the fp32 file (+ ``BuilderFlag.FP16`` for fp16). 11.x: strongly typed, so fp16
    needs the fp16 file and no flag exists."""
    if trt_major >= 11:
        if fp16 and onnx_fp16 is None:
            raise BadInput("TensorRT 11 builds fp16 engines from an fp16 ONNX: add --fp16")
        return BuildPlan(onnx_fp16 if fp16 else onnx_fp32, True, False)
    return BuildPlan(onnx_fp32, False, fp16)


def _shape_arg(name: str, shape: tuple[int, ...]) -> str:
    return f"{name}:{'x'.join(str(s) for s in shape)}"


def trtexec_command(plan: BuildPlan, profile: Profile, engine: str,
                    workspace_mb: int = DEFAULT_WORKSPACE_MB) -> str:
    """A ``trtexec`` line that reproduces :func:`build_engine` (paths relative to DIR)."""
    args = ["trtexec", f"--onnx={plan.onnx.name}",
            f"--minShapes={_shape_arg(profile.input, profile.min)}",
            f"--optShapes={_shape_arg(profile.input, profile.opt)}",
            f"--maxShapes={_shape_arg(profile.input, profile.max)}",
            f"--memPoolSize=workspace:{workspace_mb}M", f"--saveEngine={engine}"]
    if plan.fp16_flag:
        args.append("--fp16")
    return " ".join(shlex.quote(a) for a in args)


def write_trtexec_script(path: Path, profile: Profile, onnx_fp32: Path, onnx_fp16: Path | None,
                         fp16: bool, engine: str = "model.engine") -> Path:
    """DIR/trtexec.sh: the build for TensorRT 10.x and for 11.x (chosen by ``TRT_MAJOR``)."""
    lines = ["#!/bin/sh", "# Rebuild the TensorRT engine on the target device (run in this dir).",
             "# TRT_MAJOR=11 sh trtexec.sh for TensorRT 11.x (strongly typed); default 10.x.",
             "set -e", 'if [ "${TRT_MAJOR:-10}" -ge 11 ]; then']
    try:
        lines.append("  " + trtexec_command(plan_build(11, fp16, onnx_fp32, onnx_fp16),
                                            profile, engine))
    except BadInput as exc:
        lines.append(f"  echo {shlex.quote(str(exc))} >&2; exit 2")
    lines += ["else", "  " + trtexec_command(plan_build(10, fp16, onnx_fp32, onnx_fp16),
                                              profile, engine), "fi", ""]
    atomic_write_text(path, "\n".join(lines))
    path.chmod(0o755)
    return path


def build_engine(plan: BuildPlan, profile: Profile, engine_path: str | Path,
                 workspace_mb: int = DEFAULT_WORKSPACE_MB) -> Path:
    """Parse ``plan.onnx``, build with the profile, write the serialized engine atomically."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flag_enum = trt.NetworkDefinitionCreationFlag
    flags = (1 << int(flag_enum.STRONGLY_TYPED)
             if plan.strongly_typed and hasattr(flag_enum, "STRONGLY_TYPED") else 0)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(plan.onnx)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeFailure(f"TensorRT cannot parse {plan.onnx}: {errors[:400]}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    trt_profile = builder.create_optimization_profile()
    trt_profile.set_shape(profile.input, profile.min, profile.opt, profile.max)
    config.add_optimization_profile(trt_profile)
    if plan.fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeFailure(f"TensorRT failed to build an engine from {plan.onnx}")
    data = bytes(serialized)
    path = atomic_write(engine_path, lambda p: p.write_bytes(data))
    path.chmod(0o644)
    return path


def tensorrt_major() -> int:
    return int(import_tensorrt().__version__.split(".")[0])


class TrtRunner:
    """Run a serialized engine on CUDA tensors (torch owns the memory and the stream)."""

    def __init__(self, engine_path: str | Path, batch: int):
        import torch

        trt = import_tensorrt()
        if not torch.cuda.is_available():
            raise BadInput("the tensorrt backend needs a CUDA device")
        self.torch = torch
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise BadInput(f"{engine_path} is not a TensorRT engine for this TensorRT/GPU")
        self.context = self.engine.create_execution_context()
        self.buffers: dict[str, Any] = {}
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        for n in inputs:
            shape = list(self.engine.get_tensor_shape(n))
            shape[0] = batch if shape[0] < 0 else shape[0]
            self.context.set_input_shape(n, shape)
        for n in names:
            dtype = torch.from_numpy(
                np.zeros(0, trt.nptype(self.engine.get_tensor_dtype(n)))).dtype
            shape = tuple(self.context.get_tensor_shape(n))
            self.buffers[n] = torch.zeros(shape, dtype=dtype, device="cuda")
            self.context.set_tensor_address(n, self.buffers[n].data_ptr())
        self.input = inputs[0]
        self.input_shape = tuple(self.buffers[self.input].shape)

    def __call__(self) -> None:
        stream = self.torch.cuda.current_stream()
        self.context.execute_async_v3(stream.cuda_stream)
        stream.synchronize()
