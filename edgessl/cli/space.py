"""``edgessl space show|sample``: what a search space holds, and random members as JSON lines."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from edgessl.cli.app import app, console, print_json
from edgessl.cli.common import JsonOpt, ResolutionOpt, SeedOpt
from edgessl.errors import BadInput
from edgessl.spaces import get_space, list_spaces
from edgessl.spaces.base import summarize

space_app = typer.Typer(
    help="Inspect search spaces.\n\nExample:\n\n```\nedgessl space show --space mobilenet\n"
         "edgessl space sample --n 5 --seed 1 > archs.jsonl\n```",
    no_args_is_help=True, rich_markup_mode="markdown")
app.add_typer(space_app, name="space")

SpaceName = Annotated[str, typer.Option("--space", help=f"One of: {', '.join(list_spaces())}.")]


@space_app.command("show")
def show(space: SpaceName = "mobilenet", json: JsonOpt = False) -> None:
    """Choices, number of architectures, and min/max MFLOPs and params per resolution.

    Example:

    ```
    edgessl space show --space resnet --json
    ```
    """
    info = summarize(get_space(space))
    if json:
        print_json(info)
        return
    console.print(f"[bold]{info['space']}[/]: {info['n_architectures']:.3e} architectures")
    for key in ("resolutions", "width_mults", "depths_per_stage", "kernels", "expands"):
        console.print(f"  {key}: {info[key]}")
    table = Table("resolution", "min MFLOPs", "max MFLOPs", "min params", "max params")
    for row in info["cost"]:
        table.add_row(str(row["resolution"]), f"{row['min_mflops']:.1f}",
                      f"{row['max_mflops']:.1f}", f"{row['min_params'] / 1e6:.2f}M",
                      f"{row['max_params'] / 1e6:.2f}M")
    console.print(table)


@space_app.command("sample")
def sample(
    space: SpaceName = "mobilenet",
    n: Annotated[int, typer.Option("--n", help="How many architectures.")] = 5,
    seed: SeedOpt = 0,
    resolution: ResolutionOpt = None,
) -> None:
    """N random architectures, one canonical arch JSON per line (same seed, same lines).

    Example:

    ```
    edgessl space sample --n 3 --seed 1 --resolution 224 > archs.jsonl
    ```
    """
    if n < 0:
        raise BadInput(f"--n {n} must be at least 0")
    if seed < 0:
        raise BadInput(f"--seed {seed} must be at least 0")
    sp = get_space(space)
    rng = np.random.default_rng(seed)
    for _ in range(n):
        print(sp.sample(rng, resolution).to_json())
