"""``edgessl export`` (verified ONNX / TensorRT) and ``edgessl bench`` (side-by-side latency)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from edgessl.cli.app import app, console, print_json
from edgessl.cli.common import JsonOpt, ResolutionOpt
from edgessl.cli.progress import ProgressBar
from edgessl.errors import BadInput


@app.command("export")
def export_cmd(
    source: Annotated[str, typer.Argument(
        help="A search result folder, a standalone checkpoint (.ckpt), an arch JSON "
             "(random-init weights) or a baseline name.")],
    out: Annotated[str, typer.Option("--out", help="Output folder.")],
    onnx: Annotated[bool, typer.Option(
        "--onnx", help="Write the verified ONNX model(s): what export makes by default, "
                       "stated explicitly; --tensorrt alone implies this step (the engine is "
                       "built from the ONNX).")] = False,
    tensorrt: Annotated[bool, typer.Option(
        "--tensorrt", help="Also build a TensorRT engine (needs the tensorrt extra).")] = False,
    fp16: Annotated[bool, typer.Option(
        "--fp16", help="Also write a float16 ONNX model (model_fp16.onnx), checked alike.")
    ] = False,
    dynamic_batch: Annotated[bool, typer.Option(
        "--dynamic-batch", help="Symbolic batch dimension (parity checked at batch 1 and 3).")
    ] = False,
    opset: Annotated[int | None, typer.Option(
        "--opset", help="ONNX opset (18 or newer; default 20).")] = None,
    resolution: ResolutionOpt = None,
    opt_batch: Annotated[int, typer.Option(
        "--opt-batch", help="TensorRT profile: batch the engine is tuned for.")] = 1,
    max_batch: Annotated[int, typer.Option(
        "--max-batch", help="TensorRT profile: largest batch (with --dynamic-batch).")] = 16,
    int8: Annotated[bool, typer.Option(
        "--int8", help="Also write model_int8.onnx: post-training static INT8 (onnxruntime "
                       "QDQ, per-channel weights) calibrated on real images, checked by kNN "
                       "accuracy drop and feature cosine; with --tensorrt also the symmetric "
                       "model_int8_trt.onnx and trtexec_int8.sh.")] = False,
    calib_data: Annotated[str | None, typer.Option(
        "--calib-data", help="--int8: calibration images (built-in name or folder; default: "
                             "the data the checkpoint records, else fashion-mnist-sample).")
    ] = None,
    calib_images: Annotated[int | None, typer.Option(
        "--calib-images", help="--int8: calibration images (default 256).")] = None,
    calib_method: Annotated[str | None, typer.Option(
        "--calib-method", help="--int8: percentile (default), minmax or entropy.")] = None,
    max_drop: Annotated[float | None, typer.Option(
        "--max-drop", help="--int8: largest kNN accuracy drop allowed, in points (default "
                           "1); a larger one exits 1.")] = None,
    eval_data: Annotated[str | None, typer.Option(
        "--eval-data", help="--int8: labelled data of the accuracy check (default: the "
                            "calibration data; bank from its train split, test split).")
    ] = None,
    eval_images: Annotated[int | None, typer.Option(
        "--eval-images", help="--int8: test images of the accuracy check (default 1000; "
                              "bank 2000).")] = None,
    reduce_range: Annotated[bool | None, typer.Option(
        "--reduce-range/--no-reduce-range", help="--int8: 7-bit weights in model_int8.onnx "
        "(default: on for x86 CPUs without VNNI, where 8-bit weights saturate; off "
        "elsewhere).")] = None,
    json: JsonOpt = False,
) -> None:
    """Export a network to ONNX (checked with onnx.checker and against PyTorch on real images)
    and optionally TensorRT and INT8; writes DIR/export.json and DIR/trtexec.sh.

    Example:

    ```
    edgessl export results/search --onnx --fp16 --out exported/
    edgessl export mobilenet_v2 --onnx --dynamic-batch --out exported_mbv2/
    edgessl export results/search --onnx --int8 --calib-data fashion-mnist --out exported/
    ```
    """
    from edgessl.deploy.export import export

    opts = _int8_options(int8, calib_data, calib_images, calib_method, max_drop, eval_data,
                         eval_images, reduce_range)
    steps = 6 + (3 if fp16 else 0) + (1 if tensorrt else 0) + (
        0 if opts is None else 4 + (3 if tensorrt else 0))
    with ProgressBar("export", quiet=json) as bar:
        def step(label: str) -> None:
            bar.step(steps, label)

        report = export(source, out, tensorrt=tensorrt, fp16=fp16, dynamic_batch=dynamic_batch,
                        opset=opset, resolution=resolution, opt_batch=opt_batch,
                        max_batch=max_batch, step=step, int8=opts)
    if json:
        print_json(report)
        return
    shape = report["onnx"]["model.onnx"]["inputs"][0]["shape"]
    console.print(f"[bold]{report['name']}[/] -> {out}  input {shape}  opset {report['opset']}")
    table = Table("file", "dtype", "batches", "max abs diff", "tolerance", "parity")
    for name, p in report["parity"].items():
        table.add_row(name, p["dtype"], ",".join(map(str, p["batches"])),
                      f"{p['max_abs_diff']:.2e}", f"{p['tolerance']:.1e}",
                      "[green]pass[/]" if p["passed"] else "[red]FAIL[/]")
    console.print(table)
    macs = report["macs"]
    line = f"ONNX graph MFLOPs (conv+gemm, batch 1): {macs['onnx_mflops']:.2f}"
    if macs["analytic_mflops"] is not None:
        line += f"; analytic backbone: {macs['analytic_mflops']:.2f}"
    console.print(line)
    part = report["tensorrt"]
    console.print(f"TensorRT: {'engine ' + part['engine'] if part.get('engine') else ''}"
                  f"{' ready, see ' + part['trtexec'] if part['ready'] else part.get('reason')}")
    if "int8" in report:
        _print_int8(report)


def _int8_options(int8: bool, calib_data, calib_images, calib_method, max_drop, eval_data,
                  eval_images, reduce_range):
    """The INT8 options, or None without --int8 (where giving one is bad input)."""
    from edgessl.deploy.int8_export import Int8Options

    given = {"--calib-data": calib_data, "--calib-images": calib_images,
             "--calib-method": calib_method, "--max-drop": max_drop,
             "--eval-data": eval_data, "--eval-images": eval_images,
             "--reduce-range/--no-reduce-range": reduce_range}
    if not int8:
        flag = next((k for k, v in given.items() if v is not None), None)
        if flag:
            raise BadInput(f"{flag} goes with --int8")
        return None
    d = Int8Options()
    return Int8Options(calib_data, d.calib_images if calib_images is None else calib_images,
                       calib_method or d.calib_method, d.max_drop if max_drop is None else
                       max_drop, eval_data, d.eval_images if eval_images is None else eval_images,
                       reduce_range=reduce_range)


def _print_int8(report: dict) -> None:
    part = report["int8"]
    cal, chk = part["calibration"], part["check"]
    console.print(f"INT8: calibrated on {cal['images']} images of {cal['data']} "
                  f"({cal['method']}); kNN on {chk['data']} ({chk['bank_images']} bank, "
                  f"{chk['test_images']} test): fp32 {chk['knn']['fp32']:.2%}")
    table = Table("file", "scheme", "weights", "kNN", "drop (points)", "cosine mean",
                  "centred cosine mean / min", "check")
    for name, f in part["files"].items():
        c = f["check"]
        table.add_row(name, f["scheme"]["name"], f"{f['weight_bits']['bits']}-bit",
                      f"{c['knn']:.2%}", f"{c['drop_points']:.2f}",
                      f"{c['feature_cosine']['mean']:.4f}",
                      f"{c['centred_cosine']['mean']:.3f} / {c['centred_cosine']['min']:.3f}",
                      "[green]pass[/]" if c["passed"] else f"[red]FAIL[/] (> {chk['max_drop']:g})")
    console.print(table)
    for name, f in part["files"].items():
        if f.get("calibration_fallback"):
            console.print(f"[yellow]{name}: {f['calibration_fallback']}[/]")
    part = report.get("tensorrt_int8") or {}
    state = f"ready, see {part['trtexec']}" if part.get("ready") else part.get("reason")
    console.print(f"TensorRT INT8: {state}")


@app.command("bench")
def bench_cmd(
    model: Annotated[str, typer.Argument(
        help="An ONNX file, a TensorRT engine, an export or result folder, a checkpoint, an "
             "arch JSON or a baseline name.")],
    backend: Annotated[str, typer.Option(
        "--backend", help="onnxruntime-cpu, onnxruntime-cuda, torch-cpu, torch-cuda or "
                          "tensorrt.")] = "onnxruntime-cpu",
    against: Annotated[str, typer.Option(
        "--against", help="Comma-separated models measured in the same run, e.g. "
                          "resnet18,resnet50,mobilenet_v2.")] = "",
    batch: Annotated[int, typer.Option("--batch", help="Batch size.")] = 1,
    threads: Annotated[int | None, typer.Option(
        "--threads", help="CPU threads (default: the runtime's choice).")] = None,
    runs: Annotated[int, typer.Option("--runs", help="Timed runs per model.")] = 50,
    rounds: Annotated[int, typer.Option(
        "--rounds", help="Interleaved rounds the runs are split over (rotating order).")] = 10,
    warmup: Annotated[int, typer.Option(
        "--warmup", help="Untimed runs before a model's first timed round (and a quarter of "
                         "them before each later one).")] = 10,
    clock: Annotated[str, typer.Option(
        "--clock", help="auto (thread CPU time with --threads 1 on a CPU backend, as latency "
                        "tables do; else wall), wall or cpu.")] = "auto",
    resolution: ResolutionOpt = None,
    json: JsonOpt = False,
) -> None:
    """Latency of MODEL and --against models, measured side by side in one run (interleaved
    rounds, the timer latency tables use), with median/p90/p99, throughput and the ratio to
    MODEL.

    Example:

    ```
    edgessl bench exported/model.onnx --against resnet18,mobilenet_v2
    edgessl bench exported/model.onnx --against exported/model_int8.onnx --threads 1
    edgessl bench mobilenet_v2 --against resnet18 --runs 20 --json
    ```
    """
    from edgessl.deploy.bench import bench

    models = [model, *(m.strip() for m in against.split(",") if m.strip())]
    if len(set(models)) != len(models):
        raise BadInput(f"a model appears twice in {', '.join(models)}")
    total = min(rounds, runs)
    with ProgressBar("bench", quiet=json) as bar:
        report = bench(models, backend, batch, threads, runs, warmup, resolution,
                       on_round=lambda _r: bar.step(total, "timing"),
                       on_prepare=lambda m: bar.update(0, total, f"preparing {m}"),
                       rounds=rounds, clock=clock)
    if json:
        print_json(report)
        return
    table = Table("model", "precision", "median ms", "p90 ms", "p99 ms", "images/s", "ratio",
                  title=f"{report['backend']}, batch {batch}, {report['resolution']}px, "
                        f"{runs} runs, threads {threads or 'default'}, clock {report['clock']}")
    for r in report["results"]:
        table.add_row(r["model"], r["precision"] or "-", f"{r['median_ms']:.3f}",
                      f"{r['p90_ms']:.3f}",
                      f"{r['p99_ms']:.3f}", f"{r['throughput_ips']:.1f}", f"{r['ratio']:.2f}x")
    console.print(table)
