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
    latency_table: Annotated[list[str] | None, typer.Option(
        "--latency-table", help="Latency table JSON: adds predicted latency_ms. Repeat it for "
        "several tables; an fp32 and an INT8 table of one device add the INT8 speedup.")] = None,
    json: JsonOpt = False,
) -> None:
    """Exact MFLOPs (conv + linear MACs, 1000-class classifier included) and params.

    Example:

    ```
    edgessl cost resnet50 --exact
    edgessl cost results/search/best.arch.json --latency-table T.json
    edgessl cost best.arch.json --latency-table T-fp32.json --latency-table T-int8.json
    edgessl space sample --n 100 | edgessl cost - --json
    ```
    """
    from edgessl.cost.latency import LatencyTable
    from edgessl.cost.report import cost_report, int8_pair, resolve_model  # torch: not for --help

    if model == "-":
        sources = [(f"stdin line {i}", line) for i, line in enumerate(sys.stdin, 1)
                   if line.strip()]
        if not sources:
            raise BadInput("no arch JSON lines on stdin")
        models = [resolve_model(text, where=where, inline=True) for where, text in sources]
    else:
        models = [resolve_model(model)]
    tables = [LatencyTable.load(path) for path in latency_table or ()]
    rows = [cost_report(m, exact=exact, resolution=resolution, tables=tables) for m in models]
    if json:
        for row in rows:
            print_json(row)
        return
    cols = ["model", "resolution", "MFLOPs", "params"]
    cols += ["fvcore MFLOPs"] if exact else []
    cols += ["latency ms"] if len(tables) == 1 else [f"ms [{i}]" for i in range(1, len(tables) + 1)]
    cols += ["INT8 speedup"] if int8_pair(tables) else []
    table = Table(*cols, caption="\n".join(
        f"[{i}] {t.meta.get('path')}: {t.meta.get('dtype', 'fp32')}, {t.meta.get('device')}"
        for i, t in enumerate(tables, 1)) if len(tables) > 1 else None, caption_justify="left")
    for r in rows:
        cells = [r["name"], str(r["resolution"]), f"{r['mflops']:.2f}", f"{r['params']:,}"]
        cells += [f"{r['fvcore_mflops']:.2f}"] if exact else []
        ms = list((r.get("latency_ms_by_table") or {"": r.get("latency_ms")}).values())
        cells += [f"{m:.3f}" for m in ms] if tables else []
        cells += [f"{r['int8_speedup']:.2f}x"] if "int8_speedup" in r else []
        table.add_row(*cells)
    console.print(table)

