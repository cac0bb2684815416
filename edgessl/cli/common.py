"""Shared option aliases so every command spells common options the same way."""

from __future__ import annotations

from typing import Annotated

import typer

from edgessl.spaces import list_spaces

SPACES_TEXT = ", ".join(list_spaces())

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (0 or more).")]
SpaceOpt = Annotated[str, typer.Option("--space", help=f"Search space: {SPACES_TEXT}.")]
ResolutionOpt = Annotated[
    int | None, typer.Option("--resolution", help="Input resolution (pixels).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
