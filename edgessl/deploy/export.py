"""``edgessl export``: SOURCE -> verified ONNX (fp32, optionally fp16) [-> TensorRT engine],
with ``DIR/export.json`` recording what was exported, from what, shapes, opset, parity figures,
MAC counts and file hashes.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgessl.arch import Arch
from edgessl.deploy import onnx as donnx
from edgessl.deploy import tensorrt as dtrt
from edgessl.deploy.int8_export import ONNX_INT8, ONNX_INT8_TRT, Int8Options, int8_part
from edgessl.deploy.onnx_flops import onnx_macs
from edgessl.deploy.sources import Source, resolve_source, sha256_file
from edgessl.errors import BadInput, RuntimeFailure
from edgessl.utils import atomic_write_text

EXPORT_FORMAT = "edgessl-export/1"
ONNX_FP32, ONNX_FP16, ENGINE, TRTEXEC, REPORT = (
    "model.onnx", "model_fp16.onnx", "model.engine", "trtexec.sh", "export.json")
ENGINE_INT8, TRTEXEC_INT8 = "model_int8.engine", "trtexec_int8.sh"
MAC_TOLERANCE = 0.005


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    return {"torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "python": platform.python_version()}


def mac_report(source: Source, onnx_path: Path) -> dict[str, Any]:
    """MACs counted in the ONNX graph vs. the analytic count of the backbone (Archs only; the
    exported backbone has no classifier, so the analytic count uses ``num_classes=0``)."""
    counted = onnx_macs(onnx_path)
    row: dict[str, Any] = {"onnx_mflops": counted / 1e6, "analytic_mflops": None, "match": None}
    ref = source.ref
    if isinstance(ref, Arch):
        from edgessl.spaces import get_space

        space = get_space(ref.space)
        if source.resolution in space.resolutions:
            analytic = space.cost(ref.replace(resolution=source.resolution), num_classes=0)[0]
            row["analytic_mflops"] = analytic / 1e6
            row["match"] = abs(counted - analytic) <= MAC_TOLERANCE * analytic
    return row


def _prepare_out(out: str | Path) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def export(source: str, out: str | Path, tensorrt: bool = False, fp16: bool = False,
           dynamic_batch: bool = False, opset: int | None = None, resolution: int | None = None,
           opt_batch: int = 1, max_batch: int = 16,
           step: Callable[[str], None] | None = None,
           int8: Int8Options | None = None) -> dict[str, Any]:
    """Export SOURCE into folder ``out``; returns the ``export.json`` content. ``int8`` also
    writes the calibrated INT8 model(s) (:mod:`edgessl.deploy.int8_export`).

    Raises :class:`BadInput` (bad source/opset/resolution/INT8 options, TensorRT missing)
    before any work, except for ``--int8 --tensorrt`` without TensorRT, refused once the INT8
    file has been written and verified for TensorRT here; :class:`RuntimeFailure` when a
    check fails (parity, INT8 accuracy drop; files and ``export.json`` are kept so the
    failure can be inspected).
    """
    step = step or (lambda _label: None)
    opset = donnx.check_opset(opset)
    if int8 is not None:
        int8.check()
    missing_trt = dtrt.tensorrt_available() if tensorrt else None
    if missing_trt and int8 is None:
        raise BadInput(missing_trt)  # fail fast, before minutes of exporting
    build = tensorrt and not missing_trt
    if max_batch < 1 or (dynamic_batch and max_batch > donnx.MAX_BATCH):
        raise BadInput(f"--max-batch {max_batch} must lie in 1..{donnx.MAX_BATCH}")
    if not 1 <= opt_batch <= (max_batch if dynamic_batch else 1):
        raise BadInput(f"--opt-batch {opt_batch} must lie in 1..--max-batch ({max_batch})"
                       if dynamic_batch else
                       f"--opt-batch {opt_batch}: a static-batch export has batch 1; "
                       "use --dynamic-batch for larger batches")
    src = resolve_source(source, resolution)
    calib = int8.resolve(src) if int8 is not None else None  # opens the data: fails fast
    out = _prepare_out(out)
    batches = (1, 3) if dynamic_batch else (1, 1, 1)
    files = {ONNX_FP32: out / ONNX_FP32}
    if fp16:
        files[ONNX_FP16] = out / ONNX_FP16

    parity: dict[str, Any] = {}
    for name, path in files.items():
        half = name == ONNX_FP16
        step(f"exporting {name}")
        donnx.export_onnx(src.module, path, src.resolution, opset, dynamic_batch, fp16=half)
        step(f"checking {name}")
        donnx.check_model(path)
        parity[name] = donnx.check_parity(src.module, path, src.resolution, batches,
                                          fp16=half).to_dict()

    step("counting MACs")
    report: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "name": src.name,
        "source": src.describe(),
        "resolution": src.resolution,
        "dynamic_batch": dynamic_batch,
        "opset": opset,
        "onnx": {name: donnx.describe_onnx(p) for name, p in files.items()},
        "parity": parity,
        "parity_rule": {"fp32_max_abs_diff": f"{donnx.FP32_TOL} * max(1, max|reference|)",
                        "fp16_max_abs_diff": f"{donnx.FP16_TOL} * max(1, max|reference|)",
                        "images": "sklearn digits, upsampled, 3 channels, ImageNet-normalised"},
        "macs": mac_report(src, files[ONNX_FP32]),
        "versions": _versions(),
    }
    failed = [f"{name}: max abs diff {p['max_abs_diff']:.3g} > {p['tolerance']:.3g}"
              for name, p in parity.items() if not p["passed"]]
    report["tensorrt"] = (
        {"ready": False, "reason": "parity check failed: nothing is built from a wrong ONNX"}
        if failed else tensorrt_part(
            out, {"fp32": files[ONNX_FP32], **({"fp16": files[ONNX_FP16]} if fp16 else {})},
            "fp16" if fp16 else "fp32", build, opt_batch, max_batch, step))
    problems = [f"parity check failed ({'; '.join(failed)})"] if failed else []
    written = [*files.values()]
    if int8 is not None and not failed:
        report["int8"], int8_files = int8_part(out, src, files[ONNX_FP32], int8, calib,
                                               dynamic_batch, tensorrt, step)
        written += int8_files
        problems += report["int8"]["failures"]
        report["tensorrt_int8"] = _tensorrt_int8_part(  # no engine from a failed file
            out, tensorrt, build and not problems, opt_batch, max_batch, step, problems)
    for part in (report["tensorrt"], report.get("tensorrt_int8") or {}):
        written += [out / f for f in (part.get("trtexec"), part.get("engine")) if f]
    report["files"] = {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
                       for p in written}
    atomic_write_text(out / REPORT, json.dumps(report, indent=2) + "\n")
    (out / REPORT).chmod(0o644)
    if problems:
        raise RuntimeFailure(f"{'; '.join(problems)}; see {out / REPORT}")
    if missing_trt:
        raise BadInput(f"{missing_trt}; the INT8 TensorRT file was written and verified "
                       f"(build it on the device: sh {out / TRTEXEC_INT8})")
    return report


def _tensorrt_int8_part(out: Path, tensorrt: bool, build: bool, opt_batch: int, max_batch: int,
                        step: Callable[[str], None], problems: list[str]) -> dict[str, Any]:
    """``tensorrt_int8`` of export.json: the symmetric file verified, trtexec_int8.sh, the
    engine (``build``); without ``--tensorrt`` why model_int8.onnx is not for TensorRT. A
    file TensorRT would refuse is a problem (exit 1) when ``--tensorrt`` asked for it."""
    if not tensorrt:
        return {"ready": False, "reason": f"{ONNX_INT8} quantizes activations to uint8 with "
                f"zero points for onnxruntime CPU; TensorRT takes symmetric INT8 only: "
                f"--int8 --tensorrt also writes {ONNX_INT8_TRT} for it"}
    try:
        return {"onnx": ONNX_INT8_TRT, **tensorrt_int8(out, out / ONNX_INT8_TRT, build,
                                                      opt_batch, max_batch, step)}
    except RuntimeFailure as exc:
        problems.append(str(exc))
        return {"ready": False, "onnx": ONNX_INT8_TRT, "reason": str(exc)}


def tensorrt_part(out: Path, files: dict[str, Path], precision: str, build: bool,
                  opt_batch: int = 1, max_batch: int = 16,
                  step: Callable[[str], None] | None = None, script: str = TRTEXEC,
                  engine: str = ENGINE) -> dict[str, Any]:
    """Verify what TensorRT consumes (every file of ``files``: ONNX path per precision), write
    ``script`` (the trtexec lines for 10.x and 11.x), and build ``engine`` for ``precision``
    when ``build``; returns the ``tensorrt`` part of ``export.json``. Without ``build`` a file
    TensorRT would refuse gives ``ready: false`` and the reason; with it, RuntimeFailure. A
    build without TensorRT is :class:`BadInput` with the install hint, raised after the files
    were verified."""
    step = step or (lambda _label: None)
    step("verifying the ONNX for TensorRT")
    try:
        profile = dtrt.profile_for(next(iter(files.values())), opt_batch, max_batch)
        checks = {p.name: dtrt.verify_for_tensorrt(p, profile) for p in files.values()}
    except RuntimeFailure as exc:
        if build:
            raise
        return {"ready": False, "reason": str(exc)}
    dtrt.write_trtexec_script(out / script, profile, files, precision, engine)
    part: dict[str, Any] = {"ready": True, "profile": profile.to_dict(), "checks": checks,
                            "trtexec": script, "engine": None}
    if build:
        step("building the TensorRT engine")
        trt = dtrt.import_tensorrt()
        plan = dtrt.plan_build(dtrt.tensorrt_major(), precision, files)
        dtrt.build_engine(plan, profile, out / engine)
        part.update(engine=engine, tensorrt_version=trt.__version__, built_from=plan.onnx.name,
                    strongly_typed=plan.strongly_typed, weak_precision=list(plan.weak_precision))
    return part


def tensorrt_int8(out: str | Path, qdq_path: str | Path, build: bool = False,
                  opt_batch: int = 1, max_batch: int = 16,
                  step: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The TensorRT side of an INT8 export, for the INT8 exporter to call once it has written a
    QDQ model (onnxruntime ``quantize_static``: QDQ format, QInt8 symmetric activations and
    weights, ``QuantizeBias=False``) at ``qdq_path`` inside folder ``out``.

    The file is verified for TensorRT here first (:func:`edgessl.deploy.tensorrt.verify_qdq`:
    symmetric INT8, constant scales per tensor / per output channel, opset >= 13, allowed ops:
    :class:`RuntimeFailure` naming what is wrong), then ``trtexec_int8.sh`` is written (10.x and
    11.x, strongly typed; 10.x weakly typed with ``--int8``), then with ``build`` the engine
    ``model_int8.engine`` is built: without TensorRT that is :class:`BadInput` with the install
    hint. Returns the ``tensorrt_int8`` part for ``export.json``."""
    out, qdq_path = Path(out), Path(qdq_path)
    dtrt.verify_qdq(qdq_path)
    return tensorrt_part(out, {"int8": qdq_path}, "int8", build, opt_batch, max_batch, step,
                         script=TRTEXEC_INT8, engine=ENGINE_INT8)
