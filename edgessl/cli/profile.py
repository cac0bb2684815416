"""``edgessl profile``: measure a latency table here, write or import a device kit, check a
table against fresh subnets (``--check``), or re-fit it from a few (``--recalibrate``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from edgessl.cli.app import app, console, print_json
from edgessl.cli.common import JsonOpt, SpaceOpt
from edgessl.cli.progress import ProgressBar
from edgessl.errors import BadInput
from edgessl.runtime.backends import BACKENDS

MEASURE_DEFAULTS = {"backend": "onnxruntime-cpu", "threads": 1, "batch": 1, "dtype": "fp32",
                    "clock": "auto", "runs": 100, "rounds": 5, "warmup": 10, "validate": 0,
                    "net_runs": 40, "seed": 0}
# options that only mean something when a table is measured (or a bundle written)
MEASURE_ONLY = ("space", "width_mult", "kernel", "expand", "runs", "calibrate")


def _progress_bar(quiet: bool) -> tuple[ProgressBar, Callable[[str, int, int], None]]:
    """The command's bar and the ``(stage, done, total)`` callback the library calls: one task
    per stage (blocks, calibration subnets, validation subnets)."""
    bar = ProgressBar("profile", quiet=quiet)
    return bar, lambda stage, done, total: bar.update(done, total, task=stage)


def _summary(table, out: Path | None, plot_path: Path | None, json: bool) -> None:
    info = {"table": str(out) if out else None, "space": table.space, "backend": table.backend,
            "entries": len(table.entries), "complete": table.complete,
            "overhead": table.overhead, "validation": table.validation,
            "plot": str(plot_path) if plot_path else None}
    if json:
        print_json(info)
        return
    console.print(f"[bold]{out}[/]: {table.describe()}")
    val = table.validation.get("per_resolution", {})
    if val:
        t = Table("resolution", "n", "within ±10%", "MAPE", "Spearman")
        for res, v in {**val, "all": table.validation["all"]}.items():
            t.add_row(str(res), str(v["n"]), f"{v['within_10pct']:.1%}", f"{v['mape']:.2%}",
                      str(v['spearman']))
        console.print(t)
    if plot_path:
        console.print(f"scatter plot: {plot_path}")


def _scores_table(title: str, results: dict[str, dict], before: dict | None = None) -> Table:
    cols = ["resolution", "n", "within ±5%", "within ±10%", "MAPE", "Spearman", "drift"]
    t = Table(*cols, *(["±10% before", "MAPE before"] if before else []), title=title)
    for res, v in results.items():
        row = [res, str(v["n"]), f"{v['within_5pct']:.1%}", f"{v['within_10pct']:.1%}",
               f"{v['mape']:.2%}", "-" if v["spearman"] is None else f"{v['spearman']:.3f}",
               f"{v['drift']:.3f}"]
        if before:
            row += [f"{before[res]['within_10pct']:.1%}", f"{before[res]['mape']:.2%}"]
        t.add_row(*row)
    return t


def _print_host_speed(report: dict[str, Any]) -> None:
    """The anchors' line: how fast the host runs now against when the table was measured, and
    the check's scores with that change taken out."""
    speed = report.get("host_speed")
    if not speed:
        return
    ratios, then = speed["ratios"], speed["then"]
    per = ", ".join(f"{r} px x{v['ratio']:.3f}" for r, v in ratios.items() if r != "all")
    other = then["device"] != report["device"]  # then the ratio is mostly the device's
    console.print(f"{'device' if other else 'host'} speed: {ratios['all']['n']} of the table's "
                  f"own subnets, re-timed now, measure {per} of what they measured on "
                  f"{then['date']} ({'on another device: ' if other else ''}{then['device']})")
    adj = report["results_at_table_speed"]
    console.print("with that taken out, within ±10%: " + ", ".join(
        f"{r} px {v['within_10pct']:.1%}" for r, v in adj.items() if r != "all")
        + " (the table's shape; a ratio far from 1 with these high means the device runs "
          "at another speed than when the table was measured: --recalibrate, or check in "
          "the deployment's power mode)")


def _check_or_recalibrate(mode: str, table: Path, opts: dict[str, Any], out: Path | None,
                          plot: Path | None, keep: Path | None, subnets: int | None,
                          resolution: list[int] | None, net_chunk: int, json: bool,
                          anchors: int | None = None) -> None:
    from edgessl.profile.check import MAX_RECALIBRATE, NOISY, CheckSettings, check, recalibrate

    given = [k for k in MEASURE_ONLY if opts.get(k) is not None]
    if given:
        raise BadInput(f"--{given[0].replace('_', '-')} applies when measuring a table, not "
                       f"with --{mode}")
    if mode == "check" and opts["validate"] is not None:
        raise BadInput("--validate goes with --recalibrate (--check scores --subnets fresh "
                       "subnets)")
    default_subnets = MAX_RECALIBRATE if mode == "recalibrate" else 10
    settings = CheckSettings(
        subnets=default_subnets if subnets is None else subnets, resolutions=resolution or [],
        validate=5 if opts["validate"] is None else opts["validate"],
        seed=1 if opts["seed"] is None else opts["seed"], net_runs=opts["net_runs"],
        rounds=opts["rounds"], warmup=opts["warmup"], net_chunk=net_chunk, keep=keep,
        anchors=3 if anchors is None else anchors,
        given={k: opts[k] for k in ("backend", "threads", "batch", "dtype", "clock")
               if opts[k] not in (None, "auto")})
    bar, update = _progress_bar(json)
    try:
        if mode == "check":
            report = check(table, settings, plot or Path(f"{table.stem}-check.png"), update)
        else:
            if out is None:
                raise BadInput("--recalibrate needs --out NEW.json for the re-fitted table")
            _, report = recalibrate(table, out, settings, plot or out.with_suffix(".png"),
                                    update)
    finally:
        bar.close()
    if json:
        print_json(report)
        return
    console.print(f"[bold]{table}[/]: {report['backend']} ({report['table_backend_version']} "
                  f"then, {report['backend_version']} now), threads {report['threads']}, "
                  f"clock {report['clock']}; device then: {report['table_device']}; now: "
                  f"{report['device']}")
    if mode == "check":
        console.print(_scores_table(f"{report['subnets_per_resolution']} fresh subnets per "
                                    "resolution (drift: median measured / predicted)",
                                    report["results"]))
        _print_host_speed(report)
    else:
        console.print(f"re-fitted from {report['subnets']} subnets; corrections per resolution: "
                      + ", ".join(f"{r} px x{c:.3f}" for r, c in report["corrections"].items()))
        if report.get("kernel_factors"):
            console.print("block factors per kernel size: " + ", ".join(
                f"{k}x{k} x{f:.3f}" for k, f in report["kernel_factors"].items()))
        if report.get("size_exponent"):
            size = report["size_exponent"]
            console.print(f"size exponent: predictions q become q * (q / {size['ref_ms']:.2f} ms)"
                          f" ** {size['g']:.3f} (larger subnets cost relatively "
                          f"{'more' if size['g'] > 0 else 'less'} here)")
        console.print(_scores_table(f"{report['held_out_per_resolution']} held-out subnets per "
                                    "resolution, after (and before) re-calibration",
                                    report["after"], report["before"]))
        console.print(f"wrote {report['out']}")
    noise = report.get("timing_noise") or {}
    if noise.get("noisy"):
        console.print(f"[yellow]warning: the host was noisy while timing (median p90/p10 of a "
                      f"subnet's runs {noise['median_p90_over_p10']:.2f}; steady: below "
                      f"{NOISY}): these figures mix the table's error with the host's; run "
                      "again when it is quiet[/]")
    if report.get("plot"):
        console.print(f"scatter plot: {report['plot']}")


@app.command("profile")
def profile(
    backend: Annotated[str | None, typer.Option(
        "--backend", help=f"One of: {', '.join(BACKENDS)} (default onnxruntime-cpu).")] = None,
    space: SpaceOpt = None,
    resolution: Annotated[list[int] | None, typer.Option(
        "--resolution", help="Resolutions to cover (repeat; default: all of the space, or of "
                             "the table with --check/--recalibrate).")] = None,
    width_mult: Annotated[list[float] | None, typer.Option(
        "--width-mult", help="Restrict width multipliers (repeat).")] = None,
    kernel: Annotated[list[int] | None, typer.Option(
        "--kernel", help="Restrict kernel sizes (repeat).")] = None,
    expand: Annotated[list[float] | None, typer.Option(
        "--expand", help="Restrict expand ratios (repeat).")] = None,
    threads: Annotated[int | None, typer.Option(
        "--threads", help="Intra-op threads (default 1).")] = None,
    batch: Annotated[int | None, typer.Option("--batch", help="Batch size (default 1).")] = None,
    dtype: Annotated[str | None, typer.Option(
        "--dtype", help="fp32 (default), fp16 or int8 (every block and subnet quantized "
                        "as edgessl export --int8 does, in the scheme the backend runs).")
    ] = None,
    runs: Annotated[int | None, typer.Option(
        "--runs", help="Timed runs per block (default 100).")] = None,
    rounds: Annotated[int | None, typer.Option(
        "--rounds", help="Interleaved passes the runs are split over (default 5; with "
                         "--check/--recalibrate: the table's).")] = None,
    warmup: Annotated[int | None, typer.Option(
        "--warmup", help="Untimed runs first (default 10; or the table's).")] = None,
    clock: Annotated[str | None, typer.Option(
        "--clock", help="auto (thread CPU time for 1-thread CPU backends), wall or cpu.")
    ] = None,
    validate: Annotated[int | None, typer.Option(
        "--validate", help="Held-out random subnets per resolution to measure and score "
                           "(default 0; 5 with --recalibrate).")] = None,
    calibrate: Annotated[int | None, typer.Option(
        "--calibrate", help="Subnets per resolution to fit the overhead on "
                            "(default 12 when validating, else 0).")] = None,
    net_runs: Annotated[int | None, typer.Option(
        "--net-runs", help="Timed runs per subnet (default 40; or the table's).")] = None,
    net_chunk: Annotated[int, typer.Option(
        "--net-chunk", help="Subnets timed together (interleaved); more spreads noise better "
                            "but holds more sessions in memory.")] = 64,
    seed: Annotated[int | None, typer.Option(
        "--seed", help="Random seed (default 0; 1 for --check/--recalibrate's fresh "
                       "subnets).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Table JSON to write (resumed if it exists with the same settings); "
                      "with --recalibrate, the new table.")] = None,
    plot: Annotated[Path | None, typer.Option(
        "--plot", help="Scatter plot PNG (default: next to the table; --check: "
                       "TABLE-check.png here).")] = None,
    bundle: Annotated[Path | None, typer.Option(
        "--bundle", help="Write a device-kit bundle (ONNX files + manifest) here instead.")] = None,
    import_: Annotated[Path | None, typer.Option(
        "--import", help="Check a device-measured table and install it in latency_tables/.")
    ] = None,
    check: Annotated[Path | None, typer.Option(
        "--check", help="Is TABLE still true here? Time fresh subnets (exported as edgessl "
                        "export does, timed as edgessl bench does) against its predictions.")
    ] = None,
    recalibrate: Annotated[Path | None, typer.Option(
        "--recalibrate", help="Re-fit TABLE's per-resolution terms, per-kernel block factors "
                              "and size exponent from --subnets (at most 10) subnets measured "
                              "here, chosen to tell them apart; writes --out.")] = None,
    subnets: Annotated[int | None, typer.Option(
        "--subnets", help="--check: fresh subnets per resolution (default 10); "
                          "--recalibrate: subnets to fit on, at most 10 (default 10).")] = None,
    keep: Annotated[Path | None, typer.Option(
        "--keep", help="--check/--recalibrate: keep the exported subnet ONNX files here.")
    ] = None,
    anchors: Annotated[int | None, typer.Option(
        "--anchors", help="--check: also re-time this many of the table's own subnets per "
                          "resolution, to tell a change of the host's speed (power mode, "
                          "heat, neighbours) from an error of the table (default 3; 0: off).")
    ] = None,
    pin_cpu: Annotated[int | None, typer.Option(
        "--pin-cpu", help="Pin this process to one CPU core while measuring.")] = None,
    json: JsonOpt = False,
) -> None:
    """Measure a latency lookup table on this device (resumable), make/import a device kit, or
    check and re-fit a table here.

    Example (measure here; Ctrl-C and rerun to resume):

    ```
    edgessl profile --threads 1 --validate 30 --out latency_tables/my-cpu.json
    ```

    Example (a device without PyTorch: make a kit, run it there, import the table):

    ```
    edgessl profile --bundle kit/ --resolution 224 --validate 30
    python profile_device.py kit/ --out table.json     # on the device
    edgessl profile --import table.json
    ```

    Example (is a table still true here? re-fit it from 10 subnets if not):

    ```
    edgessl profile --check latency_tables/T.json --subnets 30
    edgessl profile --recalibrate latency_tables/T.json --subnets 10 --out T-here.json
    ```
    """
    modes = {"out": out if recalibrate is None else None, "bundle": bundle, "import": import_,
             "check": check, "recalibrate": recalibrate}
    chosen = [k for k, v in modes.items() if v is not None]
    if len(chosen) != 1:
        raise BadInput("give exactly one of --out (measure here), --bundle DIR, --import FILE, "
                       "--check TABLE, --recalibrate TABLE --out NEW")
    opts = {"backend": backend, "threads": threads, "batch": batch, "dtype": dtype,
            "clock": clock, "runs": runs, "rounds": rounds, "warmup": warmup,
            "validate": validate, "net_runs": net_runs, "seed": seed, "space": space,
            "width_mult": width_mult, "kernel": kernel, "expand": expand, "calibrate": calibrate}
    if pin_cpu is not None:
        from edgessl.profile.measure import pin_to_cpu

        pin_to_cpu(pin_cpu)
    if anchors is not None and chosen[0] != "check":
        raise BadInput("--anchors goes with --check")
    if chosen[0] in ("check", "recalibrate"):
        _check_or_recalibrate(chosen[0], check or recalibrate, opts, out, plot, keep, subnets,
                              resolution, net_chunk, json, anchors)
        return
    for name, value in (("--subnets", subnets), ("--keep", keep)):
        if value is not None:
            raise BadInput(f"{name} goes with --check or --recalibrate")
    _measure_bundle_or_import(chosen[0], opts, resolution, net_chunk, out, plot, bundle,
                              import_, json)


def _measure_bundle_or_import(mode: str, opts: dict[str, Any], resolution: list[int] | None,
                              net_chunk: int, out: Path | None, plot: Path | None,
                              bundle: Path | None, import_: Path | None, json: bool) -> None:
    from edgessl.profile.measure import Settings
    from edgessl.profile.validate import plot as write_plot

    v = {k: MEASURE_DEFAULTS[k] if opts[k] is None else opts[k] for k in MEASURE_DEFAULTS}
    calibrate = opts["calibrate"]
    settings = Settings(
        space=opts["space"] or "mobilenet", backend=v["backend"], resolutions=resolution or [],
        width_mults=opts["width_mult"] or [], kernels=opts["kernel"] or [],
        expands=opts["expand"] or [], threads=v["threads"], batch=v["batch"], dtype=v["dtype"],
        clock=v["clock"], runs=v["runs"], rounds=v["rounds"], warmup=v["warmup"],
        validate=v["validate"],
        calibrate=(12 if v["validate"] else 0) if calibrate is None else calibrate,
        net_runs=v["net_runs"], net_chunk=net_chunk, seed=v["seed"])
    bar, update = _progress_bar(json)
    if mode == "bundle":
        from edgessl.profile.bundle import write_bundle

        try:
            manifest = write_bundle(settings, bundle, progress=update)
        finally:
            bar.close()
        info = {"bundle": str(bundle), "entries": len(manifest["entries"]),
                "networks": len(manifest["networks"])}
        if json:
            print_json(info)
        else:
            console.print(f"wrote {bundle}: {info['entries']} block ONNX files, "
                          f"{info['networks']} subnets; on the device run: python "
                          f"profile_device.py {bundle} --out table.json")
        return
    if mode == "import":
        from edgessl.profile.bundle import import_table

        table, dest = import_table(import_, "latency_tables")
        png = write_plot(table, plot or dest.with_suffix(".png"))
        _summary(table, dest, png, json)
        return
    from edgessl.profile.measure import profile as run_profile

    try:
        table = run_profile(settings, out, progress=update)
    finally:
        bar.close()
    png = write_plot(table, plot or out.with_suffix(".png"))
    _summary(table, out, png, json)
