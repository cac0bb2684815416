"""``edgessl profile``: measure a latency table here, write a device bundle, or import one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from edgessl.cli.app import app, console, err_console, print_json
from edgessl.cli.common import JsonOpt, SeedOpt, SpaceOpt
from edgessl.cost.latency import BACKENDS
from edgessl.errors import BadInput


def _progress_bar(quiet: bool):
    """A rich progress bar (with ETA) on stderr and a callback ``(stage, done, total)`` driving
    it. The bar starts at the first update, so a refusal before any work stays one line."""
    bar = Progress(TextColumn("{task.description}"), BarColumn(),
                   TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                   TextColumn("ETA"), TimeRemainingColumn(), console=err_console,
                   disable=quiet, transient=False)
    tasks: dict[str, int] = {}

    def update(stage: str, done: int, total: int) -> None:
        if not tasks:
            bar.start()
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    return bar, update


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


@app.command("profile")
def profile(
    backend: Annotated[str, typer.Option(
        "--backend", help=f"One of: {', '.join(BACKENDS)}.")] = "onnxruntime-cpu",
    space: SpaceOpt = "mobilenet",
    resolution: Annotated[list[int] | None, typer.Option(
        "--resolution", help="Resolutions to cover (repeat; default: all of the space).")] = None,
    width_mult: Annotated[list[float] | None, typer.Option(
        "--width-mult", help="Restrict width multipliers (repeat).")] = None,
    kernel: Annotated[list[int] | None, typer.Option(
        "--kernel", help="Restrict kernel sizes (repeat).")] = None,
    expand: Annotated[list[float] | None, typer.Option(
        "--expand", help="Restrict expand ratios (repeat).")] = None,
    threads: Annotated[int, typer.Option("--threads", help="Intra-op threads.")] = 1,
    batch: Annotated[int, typer.Option("--batch", help="Batch size.")] = 1,
    dtype: Annotated[str, typer.Option("--dtype", help="fp32 or fp16.")] = "fp32",
    runs: Annotated[int, typer.Option("--runs", help="Timed runs per block.")] = 100,
    rounds: Annotated[int, typer.Option(
        "--rounds", help="Interleaved passes the runs are split over.")] = 5,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed runs first.")] = 10,
    clock: Annotated[str, typer.Option(
        "--clock", help="auto (thread CPU time for 1-thread CPU backends), wall or cpu.")] = "auto",
    validate: Annotated[int, typer.Option(
        "--validate", help="Held-out random subnets per resolution to measure and score.")] = 0,
    calibrate: Annotated[int | None, typer.Option(
        "--calibrate", help="Subnets per resolution to fit the overhead on "
                            "(default 12 when validating, else 0).")] = None,
    net_runs: Annotated[int, typer.Option("--net-runs", help="Timed runs per subnet.")] = 40,
    net_chunk: Annotated[int, typer.Option(
        "--net-chunk", help="Subnets timed together (interleaved); more spreads noise better "
                            "but holds more sessions in memory.")] = 64,
    seed: SeedOpt = 0,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Table JSON to write (resumed if it exists with the same settings).")] = None,
    plot: Annotated[Path | None, typer.Option(
        "--plot", help="Scatter plot PNG (default: next to the table).")] = None,
    bundle: Annotated[Path | None, typer.Option(
        "--bundle", help="Write a device-kit bundle (ONNX files + manifest) here instead.")] = None,
    import_: Annotated[Path | None, typer.Option(
        "--import", help="Check a device-measured table and install it in latency_tables/.")
    ] = None,
    pin_cpu: Annotated[int | None, typer.Option(
        "--pin-cpu", help="Pin this process to one CPU core while measuring.")] = None,
    json: JsonOpt = False,
) -> None:
    """Measure a latency lookup table on this device (resumable), or make/import a device kit.

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
    """
    from edgessl.profile.measure import Settings
    from edgessl.profile.validate import plot as write_plot

    if sum(x is not None for x in (out, bundle, import_)) != 1:
        raise BadInput("give exactly one of --out (measure here), --bundle DIR, --import FILE")
    settings = Settings(
        space=space, backend=backend, resolutions=resolution or [], width_mults=width_mult or [],
        kernels=kernel or [], expands=expand or [], threads=threads, batch=batch, dtype=dtype,
        clock=clock, runs=runs, rounds=rounds, warmup=warmup, validate=validate,
        calibrate=(12 if validate else 0) if calibrate is None else calibrate,
        net_runs=net_runs, net_chunk=net_chunk, seed=seed)
    bar, update = _progress_bar(json)
    if bundle is not None:
        from edgessl.profile.bundle import write_bundle

        try:
            manifest = write_bundle(settings, bundle, progress=update)
        finally:
            if bar.live.is_started:
                bar.stop()
        info = {"bundle": str(bundle), "entries": len(manifest["entries"]),
                "networks": len(manifest["networks"])}
        if json:
            print_json(info)
        else:
            console.print(f"wrote {bundle}: {info['entries']} block ONNX files, "
                          f"{info['networks']} subnets; on the device run: python "
                          f"profile_device.py {bundle} --out table.json")
        return
    if import_ is not None:
        from edgessl.profile.bundle import import_table

        dest_dir, name = ("latency_tables", None)
        table, dest = import_table(import_, dest_dir, name)
        png = write_plot(table, plot or dest.with_suffix(".png"))
        _summary(table, dest, png, json)
        return
    from edgessl.profile.measure import profile as run_profile

    try:
        table = run_profile(settings, out, progress=update, pin_cpu=pin_cpu)
    finally:
        if bar.live.is_started:
            bar.stop()
    png = write_plot(table, plot or out.with_suffix(".png"))
    _summary(table, out, png, json)
