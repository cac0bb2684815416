"""``edgessl cost``: MFLOPs, params (and predicted latency) of an arch or a baseline."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from edgessl.cli.app import app, console, print_json
from edgessl.cli.common import JsonOpt, ResolutionOpt
from edgessl.errors import BadInput


@app.command("cost")
def cost(
    model: Annotated[str, typer.Argument(
        help="An arch JSON file, '-' for arch JSON lines on stdin, or a baseline name.")],
    exact: Annotated[bool, typer.Option(
        "--exact", help="Also build the network and count with fvcore (the reference).")] = False,
    resolution: ResolutionOpt = None,
    latency_table: Annotated[str | None, typer.Option(
        "--latency-table", help="Latency table JSON: adds predicted latency_ms.")] = None,
    json: JsonOpt = False,
) -> None:
    """Exact MFLOPs (conv + linear MACs, 1000-class classifier included) and params.

    Example:

    ```
    edgessl cost resnet50 --exact
    edgessl cost results/search/best.arch.json --latency-table T.json
    edgessl space sample --n 100 | edgessl cost - --json
    ```
    """
    from edgessl.cost.report import cost_report, resolve_model  # torch: not for --help

    if model == "-":
        sources = [(f"stdin line {i}", line) for i, line in enumerate(sys.stdin, 1)
                   if line.strip()]
        if not sources:
            raise BadInput("no arch JSON lines on stdin")
        models = [resolve_model(text, where=where, inline=True) for where, text in sources]
    else:
        models = [resolve_model(model)]
    rows = [cost_report(m, exact=exact, resolution=resolution, latency_table=latency_table)
            for m in models]
    if json:
        for row in rows:
            print_json(row)
        return
    cols = ["model", "resolution", "MFLOPs", "params"]
    cols += ["fvcore MFLOPs"] if exact else []
    cols += ["latency ms"] if latency_table else []
    table = Table(*cols)
    for r in rows:
        cells = [r["name"], str(r["resolution"]), f"{r['mflops']:.2f}", f"{r['params']:,}"]
        cells += [f"{r['fvcore_mflops']:.2f}"] if exact else []
        cells += [f"{r['latency_ms']:.3f}"] if latency_table else []
        table.add_row(*cells)
    console.print(table)
