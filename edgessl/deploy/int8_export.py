"""The INT8 part of ``edgessl export --int8``: calibrate, quantize, verify, check accuracy.

Writes, next to ``model.onnx``:
- ``model_int8.onnx``: the ``u8s8`` QDQ model for onnxruntime CPU (see
  :mod:`edgessl.deploy.int8` for why two schemes);
- with ``--tensorrt``, ``model_int8_trt.onnx``: the ``s8s8`` (symmetric) QDQ model TensorRT
  builds, from the same calibration images (``export.py`` verifies it for TensorRT and writes
  ``trtexec_int8.sh``).

Every INT8 file must pass ``onnx.checker``, run in onnxruntime at batch 1 (and 3 with
``--dynamic-batch``), and lose at most ``--max-drop`` kNN accuracy points against
``model.onnx`` on a labelled test split; the feature cosine of INT8 vs fp32 is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import onnx

from edgessl.deploy import int8 as q
from edgessl.deploy import onnx as donnx
from edgessl.deploy.sources import Source
from edgessl.errors import BadInput

ONNX_INT8, ONNX_INT8_TRT = "model_int8.onnx", "model_int8_trt.onnx"
FILE_SCHEMES = {ONNX_INT8: "u8s8", ONNX_INT8_TRT: "s8s8"}
PREPROCESSING = ("edgessl.data.eval_transform: resize the short side, centre crop, scale to "
                 "[0, 1], ImageNet mean/std (what evaluation and the search's proxy feed)")


@dataclass
class Int8Options:
    """``--calib-*``, ``--max-drop`` and ``--eval-*`` (None: the defaults described there)."""

    calib_data: str | None = None
    calib_images: int = q.DEFAULT_CALIB_IMAGES
    calib_method: str = q.DEFAULT_CALIB_METHOD
    max_drop: float = q.DEFAULT_MAX_DROP
    eval_data: str | None = None
    eval_images: int = q.DEFAULT_EVAL_IMAGES
    eval_bank: int = q.DEFAULT_EVAL_BANK
    seed: int = 0
    reduce_range: bool | None = None  # 7-bit weights; None: by this CPU (q.saturation_risk)

    def check(self) -> None:
        """:class:`BadInput` for an unusable option (before any work)."""
        q.check_options(self.calib_images, self.calib_method, self.max_drop, self.eval_images)
        if self.eval_bank < 1:
            raise BadInput(f"eval bank {self.eval_bank} must be at least 1")

    def resolve(self, src: Source) -> dict[str, Any]:
        """Which data calibrates and which checks (opened now, so that unusable data is bad
        input before any export): ``--calib-data``, else the data recorded in the source's
        checkpoint meta, else the built-in default; ``--eval-data`` defaults to it."""
        data, origin = self.calib_data, "--calib-data"
        if data is None:
            data, origin = _recorded_data(src)
        q.open_images(data, "train", "--calib-data")
        eval_data = self.eval_data or data
        train = q.open_images(eval_data, "train", "--eval-data")
        test = q.open_images(eval_data, "test", "--eval-data")
        if not (train.labelled and test.labelled):
            flag = "--eval-data" if self.eval_data else "--calib-data (the default --eval-data)"
            raise BadInput(f"{flag} {eval_data} has no labels: the INT8 accuracy check needs "
                           "labelled images; give --eval-data a labelled set")
        return {"data": data, "from": origin, "eval_data": eval_data}


def _recorded_data(src: Source) -> tuple[str, str]:
    """The data a search result or checkpoint records in its meta (``data``), else the
    built-in default."""
    kind, path = src.origin.get("kind"), src.origin.get("path")
    if kind in ("result", "checkpoint") and path:
        from edgessl.checkpoint import MODEL_FORMAT, load_checkpoint
        from edgessl.deploy.sources import RESULT_CKPT

        ckpt = Path(path) / RESULT_CKPT if kind == "result" else Path(path)
        meta = load_checkpoint(ckpt, expect=MODEL_FORMAT).get("meta") or {}
        if isinstance(meta.get("data"), str):
            return meta["data"], f"the checkpoint's meta ({ckpt.name})"
    return q.DEFAULT_CALIB_DATA, ("the built-in default (the source records no data)"
                                  if kind in ("result", "checkpoint") else
                                  "the built-in default (random-init weights)")


def int8_part(out: Path, src: Source, fp32: Path, opts: Int8Options, calib: dict[str, Any],
              dynamic_batch: bool, symmetric: bool,
              step: Callable[[str], None]) -> tuple[dict[str, Any], list[Path]]:
    """Calibrate on ``opts.calib_images`` images, write ``model_int8.onnx`` (and, with
    ``symmetric``, ``model_int8_trt.onnx``), check each, and return the ``int8`` part of
    ``export.json`` (its ``failures``: one line per file that lost more than ``--max-drop``)
    and the files written."""
    step("calibration images")
    images = q.calibration_images(calib["data"], opts.calib_images, src.resolution, opts.seed)
    model = onnx.load(str(fp32))
    names = [ONNX_INT8, *([ONNX_INT8_TRT] if symmetric else [])]
    batches = (1, 3) if dynamic_batch else (1,)
    files: dict[str, dict[str, Any]] = {}
    for name in names:
        step(f"quantizing {name}")
        info = q.quantize_model(model, out / name, images[:, None], FILE_SCHEMES[name],
                                opts.calib_method, reduce_range=opts.reduce_range)
        donnx.check_model(out / name)
        files[name] = {**info, "onnx": donnx.describe_onnx(out / name),
                       "qdq": q.qdq_summary(out / name),
                       "batches_run": q.run_batches(out / name, src.resolution, batches)}
    step("INT8 accuracy check")
    check = q.accuracy_check(fp32, {n: out / n for n in names}, calib["eval_data"],
                             src.resolution, opts.eval_images, opts.eval_bank, opts.max_drop)
    failures = []
    for name in names:
        r = check["files"][name]
        files[name]["check"] = r
        if not r["passed"]:
            failures.append(f"INT8 accuracy check failed ({name}: kNN {r['knn']:.2%} vs fp32 "
                            f"{check['knn']['fp32']:.2%}, a drop of {r['drop_points']:.2f} "
                            f"points > --max-drop {opts.max_drop:g})")
    calibration = {"data": calib["data"], "data_from": calib["from"], "split": "train",
                   "images": int(len(images)), "asked": opts.calib_images,
                   "method": opts.calib_method, "seed": opts.seed,
                   "preprocessing": PREPROCESSING}
    part = {"files": files, "calibration": calibration,
            "check": {k: v for k, v in check.items() if k != "files"},
            "options": asdict(opts), "failures": failures}
    return part, [out / n for n in names]


__all__ = ["ONNX_INT8", "ONNX_INT8_TRT", "FILE_SCHEMES", "Int8Options", "int8_part"]
