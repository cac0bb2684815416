"""Which parts of a MobileNet-like network to quantize: full INT8 against mixed precision.

``export --int8`` quantizes every layer (edgessl/deploy/int8.py says why). The profile in the
``int8`` section shows depthwise convolutions getting slower in INT8 on onnxruntime CPU and
h-swish / hard-sigmoid running in float between DQ and Q, which suggests keeping those in
fp32. This measures it: the same fp32 file (``model.onnx`` of an export folder) quantized as
``export --int8`` does (u8s8 QDQ, per-channel weights, minmax on ``--calib-images``
fashion-mnist-sample images), and with the depthwise convolutions and/or every op but
Conv/Add/GlobalAveragePool left in fp32; all timed side by side in one interleaved run (batch
1, 1 thread, thread-CPU clock, as latency tables are).

    python benchmarks/int8_variants.py --model runs/int8-bench/searched/model.onnx [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from _machine import machine, publish, repo_relative, today
from _runs import fail

from edgessl.deploy.int8 import calibration_images, pool_rewrite, quantize_model
from edgessl.runtime.sessions import OrtSession
from edgessl.runtime.timer import summarize, time_interleaved
from edgessl.utils import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results" / "int8_variants.json"


def depthwise(model: onnx.ModelProto) -> list[str]:
    """Names of the grouped (depthwise) Conv nodes."""
    return [n.name for n in model.graph.node if n.op_type == "Conv"
            and next((a.i for a in n.attribute if a.name == "group"), 1) > 1]


def variants(model: onnx.ModelProto) -> dict[str, dict]:
    """``quantize_model``'s ``keep_float`` per variant (empty: what export --int8 does)."""
    dw = depthwise(model)
    return {"full INT8 (export --int8)": {},
            "depthwise convs fp32": {"nodes_to_exclude": dw},
            "only Conv/Add/pool INT8": {"op_types_to_quantize": ["Conv", "Add",
                                                                  "GlobalAveragePool"]},
            "only dense Conv/Add INT8": {"nodes_to_exclude": dw,
                                         "op_types_to_quantize": ["Conv", "Add"]}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="an fp32 model.onnx (static batch 1)")
    ap.add_argument("--calib-images", type=int, default=64)
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--write", action="store_true", help="put the table into BENCHMARKS.md")
    args = ap.parse_args()
    if not Path(args.model).is_file():
        fail(f"--model {args.model}: no such file")
    prepared, _ = pool_rewrite(onnx.load(args.model))
    side = prepared.graph.input[0].type.tensor_type.shape.dim[-1].dim_value
    x = np.ascontiguousarray(calibration_images("fashion-mnist-sample", args.calib_images,
                                                side)[:, None], dtype=np.float32)
    files = {"fp32": args.model}
    with tempfile.TemporaryDirectory(prefix="edgessl-int8v-") as tmp:
        for i, (name, keep) in enumerate(variants(prepared).items()):
            files[name] = str(Path(tmp) / f"v{i}.onnx")
            quantize_model(prepared, files[name], x, "u8s8", "minmax", keep)
        sessions = {k: OrtSession(v, threads=1) for k, v in files.items()}
        timed = time_interleaved(sessions, args.runs, args.rounds, args.warmup, "cpu")
    median = {k: summarize(t)["median_ms"] for k, t in timed.items()}
    rows = [{"variant": k, "median_ms": ms, "speedup_vs_fp32": median["fp32"] / ms}
            for k, ms in median.items()]
    result = {"model": repo_relative(args.model), "resolution": side, "rows": rows,
              "command": "python benchmarks/int8_variants.py " + " ".join(sys.argv[1:]),
              "date": today(), "machine": machine()}
    atomic_write_text(RESULTS, json.dumps(result, indent=1) + "\n")
    lines = [f"`{result['command']}` on {result['date']}; {result['machine']}; "
             f"{side} px, batch 1, 1 thread, thread-CPU clock, {args.runs} runs over "
             f"{args.rounds} interleaved rounds.", "",
             "| variant | median ms | speedup vs fp32 |", "|---|---:|---:|"]
    lines += [f"| {r['variant']} | {r['median_ms']:.2f} | {r['speedup_vs_fp32']:.2f}x |"
              for r in rows]
    publish("int8_variants", lines, args.write)


if __name__ == "__main__":
    main()
