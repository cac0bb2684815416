"""Which calibration method keeps INT8 features closest to fp32: minmax, percentile, entropy.

Each fp32 ``model.onnx`` (an ``edgessl export`` folder's) is quantized as ``export --int8``
quantizes it (u8s8 QDQ, per-channel weights, 7-bit weights on x86 CPUs without VNNI; calibrated
on the same ``--calib-images`` images of ``--data``'s train split) once per method, and all the
INT8 files of a model are checked in one pass of ``export``'s own accuracy check: kNN accuracy
(k=20; bank: the first ``--bank`` train images, test: the first ``--test`` test images) and
the cosine of INT8 to fp32 features, plain and centred on the mean fp32 feature (the part that
tells images apart; less noisy than a kNN drop on a few thousand images).

    python benchmarks/int8_calibration.py --models runs/A/model.onnx,runs/B/model.onnx [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import machine, publish, repo_relative, today  # noqa: E402
from _runs import fail  # noqa: E402

from edgessl.deploy import int8 as q  # noqa: E402
from edgessl.utils import atomic_write_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "int8_calibration.json"


def check_model(path: Path, args, methods: list[str]) -> dict:
    """One model: its fp32 kNN, and per method the INT8 kNN, drop and cosines."""
    model = onnx.load(str(path))
    side = model.graph.input[0].type.tensor_type.shape.dim[-1].dim_value
    images = q.calibration_images(args.data, args.calib_images, side)[:, None]
    with tempfile.TemporaryDirectory(prefix="edgessl-int8cal-") as tmp:
        files, bits = {}, None
        for m in methods:
            files[m] = Path(tmp) / f"{m}.onnx"
            bits = q.quantize_model(model, files[m], images, "u8s8", m)["weight_bits"]
        check = q.accuracy_check(path, files, args.data, side, args.test, args.bank)
    return {"model": repo_relative(path), "resolution": side, "weight_bits": bits,
            "knn_fp32": check["knn"]["fp32"], "test_images": check["test_images"],
            "bank_images": check["bank_images"],
            "methods": {m: {"knn": r["knn"], "drop_points": r["drop_points"],
                            "cosine": r["feature_cosine"]["mean"],
                            "centred_cosine": r["centred_cosine"]["mean"]}
                        for m, r in check["files"].items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", required=True, help="comma list of fp32 model.onnx files")
    ap.add_argument("--methods", default=",".join(q.CALIB_METHODS))
    ap.add_argument("--data", default=q.DEFAULT_CALIB_DATA, help="calibration and check data")
    ap.add_argument("--calib-images", type=int, default=q.DEFAULT_CALIB_IMAGES)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--bank", type=int, default=2000)
    ap.add_argument("--write", action="store_true", help="put the table into BENCHMARKS.md")
    args = ap.parse_args()
    models = [Path(m) for m in args.models.split(",") if m]
    methods = [m for m in args.methods.split(",") if m]
    for m in models:
        if not m.is_file():
            fail(f"--models: {m}: no such file")
    for m in methods:
        if m not in q.CALIB_METHODS:
            fail(f"--methods: {m!r} is not one of {', '.join(q.CALIB_METHODS)}")
    if min(args.calib_images, args.test, args.bank) < 1:
        fail("--calib-images, --test and --bank must be at least 1")
    warnings.filterwarnings("ignore")
    t0 = time.time()
    rows = []
    for m in models:
        print(f"{m}: quantizing with {', '.join(methods)}; checking", flush=True)
        rows.append(check_model(m, args, methods))
    result = {"command": "python benchmarks/int8_calibration.py " + " ".join(sys.argv[1:]),
              "date": today(), "machine": machine(), "data": args.data,
              "calib_images": args.calib_images, "methods": methods, "rows": rows,
              "seconds": time.time() - t0}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS, json.dumps(result, indent=1) + "\n")
    publish("int8_calibration", section(result), args.write)


def section(r: dict) -> list[str]:
    """BENCHMARKS.md's ``int8_calibration`` section."""
    methods = r["methods"]
    first = r["rows"][0]
    lines = [f"`{r['command']}` on {r['date']}; {r['machine']}. Calibration: {r['calib_images']}"
             f" `{r['data']}` train images; weights {first['weight_bits']['bits']}-bit "
             f"({first['weight_bits']['why']}). Check: kNN on {first['test_images']} test "
             f"images, bank {first['bank_images']}; centred cosine of INT8 to fp32 features.",
             "", "| model | fp32 kNN | " + " | ".join(
                 f"{m}: drop, centred cos" for m in methods) + " |",
             "|---|---:|" + "---:|" * len(methods)]
    for row in r["rows"]:
        cells = [f"{row['methods'][m]['drop_points']:+.2f}, "
                 f"{row['methods'][m]['centred_cosine']:.4f}" for m in methods]
        lines.append(f"| `{row['model']}` | {100 * row['knn_fp32']:.2f}% | "
                     + " | ".join(cells) + " |")
    med = [f"{np.median([x['methods'][m]['drop_points'] for x in r['rows']]):+.2f}, "
           f"{np.median([x['methods'][m]['centred_cosine'] for x in r['rows']]):.4f}"
           for m in methods]
    lines.append("| median | | " + " | ".join(med) + " |")
    return lines


if __name__ == "__main__":
    main()
