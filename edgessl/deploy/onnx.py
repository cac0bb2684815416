"""The one ONNX exporter (blocks, validation subnets, deployed networks), ``onnx.checker``, and a
parity check in onnxruntime.

Why these choices:
- One export function, :func:`onnx_model`, for everything edgessl times or ships: the per-block
  files of a latency table, its calibration and validation subnets, ``profile --check``'s fresh
  subnets and ``edgessl export``'s deployed networks, so a table and ``bench`` time graphs made
  the same way. It is ``torch.onnx.export(..., dynamo=True)`` at opset 20 by default, not the
  TorchScript exporter at opset 17 that blocks used before: the TorchScript exporter is
  deprecated ("will be removed", torch 2.9+ warns), while dynamo is the maintained one. Both
  were timed side by side on four subnets and ran within 1% of each other, so the runtime speed
  did not decide; the cost is export time (about 0.9 s per block here instead of 0.02 s, some
  13 minutes more for the 840 blocks of a whole-space table, whose timing takes longer).
  Of that, about 0.9 s per call went to rebuilding the exporter's table of ATen-to-ONNX
  functions (``ONNXRegistry.from_torchlib``, the same for every call of one opset), so
  :func:`onnx_model` builds it once per process and hands each export a copy
  (:func:`_reused_torchlib_registry`; measured 1.24 -> 0.34 s for a conv block, 9.2 -> 7.3 s
  for the largest subnet at 128 px). It patches a private torch class only for the duration of
  the call and falls back to torch's own path when that class is not where torch 2.9-2.14 keep it.
- One self-contained file (no external data: our networks are far below the 2 GB protobuf
  limit, and we refuse to write anything bigger rather than split it silently).
- The dynamo exporter implements opset 18 and above only. Asked for less, it warns, tries the
  ONNX version converter, and when that fails (it does for our networks: ReduceMean's axes
  became an input in opset 18) it silently writes opset 18. We refuse ``--opset < 18`` up
  front and check the written opset afterwards, so the file always has the opset asked for.
- fp16: the network is cast with ``.half()`` and exported, which gives an ONNX model whose
  inputs, weights and outputs are float16 (what a strongly typed TensorRT build needs).
  That needs no extra dependency (onnxconverter-common's float16 converter would).
- Parity: real images (see :func:`edgessl.deploy.sources.sample_images`), onnxruntime CPU vs
  PyTorch fp32 eval. fp32 passes with max abs diff <= 1e-4 * max(1, max |reference|): 1e-4
  absolute for features of unit scale, and relative to the scale for larger ones (ResNet
  features reach 10-50, where fp32 rounding alone gives ~1e-6 relative). fp16 passes with
  max abs diff <= 2e-2 * max(1, max |reference|), 2% of the output scale: fp16 keeps ~3
  significant digits and rounding adds up over 50+ layers (we measured 0.2-0.7% on random
  archs of both spaces).
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from edgessl.errors import BadInput, RuntimeFailure
from edgessl.utils import atomic_write

INPUT_NAME, OUTPUT_NAME, BATCH_DIM = "input", "features", "batch"
MIN_OPSET = 18  # the lowest opset the dynamo exporter implements
DEFAULT_OPSET = 20
MAX_BATCH = 1024  # upper bound of the dynamic batch dimension in the exported graph
FP32_TOL = 1e-4
FP16_TOL = 2e-2
MAX_BYTES = 2 * 1024**3


def max_opset() -> int:
    """The newest opset both onnx and this exporter know about."""
    return onnx.defs.onnx_opset_version()


def check_opset(opset: int | None) -> int:
    """The opset to export with; :class:`BadInput` for one the exporter cannot produce."""
    if opset is None:
        return DEFAULT_OPSET
    if opset < MIN_OPSET:
        raise BadInput(f"--opset {opset} is below {MIN_OPSET}, the lowest opset the ONNX exporter "
                       f"implements for this network; use --opset {MIN_OPSET} or higher")
    if opset > max_opset():
        raise BadInput(f"--opset {opset} is newer than this onnx package knows "
                       f"(at most {max_opset()})")
    return opset


def parity_tolerance(fp16: bool, reference_scale: float) -> float:
    """The max abs difference allowed (see the module docstring)."""
    return (FP16_TOL if fp16 else FP32_TOL) * max(1.0, reference_scale)


_REGISTRIES: dict[Any, Any] = {}


@contextlib.contextmanager
def _reused_torchlib_registry() -> Iterator[None]:
    """While active, ``ONNXRegistry.from_torchlib(opset)`` returns a copy of one registry built
    per opset in this process instead of rebuilding it (see the module docstring). A copy, so
    that a caller's ``custom_translation_table`` never leaks into a later export."""
    try:
        from torch.onnx._internal.exporter import _registration
        registry_cls = _registration.ONNXRegistry
        original = registry_cls.__dict__["from_torchlib"]
        build = original.__func__
    except (ImportError, AttributeError, KeyError):  # another torch layout: torch's own path
        yield
        return

    def from_torchlib(cls: type, opset_version: Any = _registration._constants.TORCHLIB_OPSET):
        if opset_version not in _REGISTRIES:
            _REGISTRIES[opset_version] = build(cls, opset_version)
        fresh = copy.copy(_REGISTRIES[opset_version])
        fresh.functions = {k: list(v) for k, v in fresh.functions.items()}
        return fresh

    registry_cls.from_torchlib = classmethod(from_torchlib)
    try:
        yield
    finally:
        registry_cls.from_torchlib = original


def onnx_model(module: nn.Module, input_shape: Sequence[int], opset: int | None = None,
               dynamic_batch: bool = False, fp16: bool = False) -> onnx.ModelProto:
    """``module`` (eval mode, a copy: the caller's module is left as it is) as an ONNX model
    with input ``input`` of ``input_shape`` and output ``features``; the batch dimension is the
    symbolic ``batch`` with ``dynamic_batch``. Raises :class:`BadInput` for a bad opset and
    :class:`RuntimeFailure` when the exporter fails or the model would exceed 2 GB."""
    opset = check_opset(opset)
    model = copy.deepcopy(module).eval()
    dtype = torch.float16 if fp16 else torch.float32
    model = model.to(dtype)
    shape = (2 if dynamic_batch else int(input_shape[0]), *map(int, input_shape[1:]))
    example = torch.zeros(*shape, dtype=dtype)
    dynamic = ({0: torch.export.Dim(BATCH_DIM, min=1, max=MAX_BATCH)},) if dynamic_batch else None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # exporting runs small forwards: more threads only contend
    try:
        with warnings.catch_warnings(), _reused_torchlib_registry():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, (example,), dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME], dynamic_shapes=dynamic, external_data=False,
                verbose=False)
    except Exception as exc:  # the exporter raises many types; all mean "could not export"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RuntimeFailure(f"ONNX export of {type(module).__name__} at input {shape} failed: "
                             f"{first[:300]}") from exc
    finally:
        torch.set_num_threads(threads)
    proto = program.model_proto
    written = {o.domain: o.version for o in proto.opset_import}.get("", None)
    if written != opset:
        raise BadInput(f"--opset {opset}: the exporter could only produce opset {written} "
                       f"for this network")
    if proto.ByteSize() >= MAX_BYTES:
        raise RuntimeFailure(f"the ONNX model is {proto.ByteSize() / 1e9:.1f} GB; edgessl writes "
                             "single files under 2 GB only")
    return proto


def export_onnx(module: nn.Module, path: str | Path, resolution: int, opset: int | None = None,
                dynamic_batch: bool = False, fp16: bool = False) -> Path:
    """Write ``module`` (a backbone: images -> features) as one self-contained ONNX file with
    input (N, 3, R, R), N = 1 or symbolic (:func:`onnx_model`); atomically, mode 0644."""
    proto = onnx_model(module, (1, 3, resolution, resolution), opset, dynamic_batch, fp16)
    written_path = atomic_write(path, lambda p: onnx.save_model(proto, str(p)))
    written_path.chmod(0o644)  # mkstemp makes 0600; an exported model is meant to be shared
    return written_path


def check_model(path: str | Path) -> None:
    """``onnx.checker`` with full checks; :class:`RuntimeFailure` if the file is invalid."""
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise RuntimeFailure(f"{path} fails onnx.checker: {str(exc).splitlines()[0]}") from None


@dataclass
class ParityResult:
    """Parity of one ONNX file against PyTorch fp32 at one or more batch sizes."""

    batches: list[int]
    max_abs_diff: float
    max_abs_reference: float
    relative_diff: float  # max_abs_diff / max_abs_reference: shows the check is not vacuous
    tolerance: float
    dtype: str
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ort_session(path: str | Path, providers: Sequence[str] = ("CPUExecutionProvider",),
                threads: int | None = None):
    """An onnxruntime session (all graph optimisations on)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=list(providers))
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise RuntimeFailure(f"onnxruntime cannot load {path}: "
                             f"{str(exc).splitlines()[0][:300]}") from None


def check_parity(module: nn.Module, path: str | Path, resolution: int,
                 batches: Sequence[int] = (1,), fp16: bool = False) -> ParityResult:
    """Run ``path`` in onnxruntime and ``module`` in PyTorch fp32 on real images at each batch
    size; the verdict uses :func:`parity_tolerance`. Does not raise on failure."""
    from edgessl.deploy.sources import sample_images

    session = ort_session(path)
    module = module.eval().float()
    diff, scale = 0.0, 0.0
    offset = 0
    for b in batches:
        x = sample_images(b, resolution, offset)
        offset += b
        with torch.no_grad():
            ref = module(torch.from_numpy(x)).numpy().astype(np.float64)
        feed = x.astype(np.float16) if fp16 else x
        try:
            got = session.run(None, {INPUT_NAME: feed})[0].astype(np.float64)
        except Exception as exc:  # onnxruntime's own error types
            raise RuntimeFailure(f"onnxruntime failed on {path} at batch {b}: "
                                 f"{str(exc).splitlines()[0][:300]}") from None
        if got.shape != ref.shape:
            raise RuntimeFailure(f"{path}: output shape {got.shape} != PyTorch {ref.shape}")
        diff = max(diff, float(np.nanmax(np.abs(got - ref))) if np.isfinite(got).all()
                   else float("inf"))
        scale = max(scale, float(np.abs(ref).max()))
    tol = parity_tolerance(fp16, scale)
    rel = diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))
    return ParityResult(list(batches), diff, scale, rel, tol, "float16" if fp16 else "float32",
                        diff <= tol)


def _dim(d) -> int | str:
    return d.dim_param if d.dim_param else int(d.dim_value)


def describe_onnx(path: str | Path) -> dict[str, Any]:
    """Input/output names, shapes (symbolic dims as names), dtypes, opset and op types."""
    model = onnx.load(str(path), load_external_data=False)

    def io(values) -> list[dict[str, Any]]:
        return [{"name": v.name, "shape": [_dim(d) for d in v.type.tensor_type.shape.dim],
                 "dtype": onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name}
                for v in values]

    return {
        "inputs": io(model.graph.input),
        "outputs": io(model.graph.output),
        "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "ops": sorted({n.op_type for n in model.graph.node}),
        "nodes": len(model.graph.node),
    }
