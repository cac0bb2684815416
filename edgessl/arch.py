"""The one currency: a frozen, validated, hashable architecture with a canonical JSON form.

An :class:`Arch` names its search space, input resolution, width multiplier and, per stage, the
kernel size and expand ratio of each active block (the stage depth is the number of blocks).
Sampling, mutation, cost, supernet activation, extraction and export all take an Arch.

An Arch is validated when it is made, against the choices of its space; this module imports no
space for that: each space registers its check here (:func:`register_space`), which
``edgessl.spaces`` does for the built-in ones when it is imported.

>>> from edgessl.spaces import get_space
>>> arch = get_space("mobilenet").largest(224)
>>> Arch.from_json(arch.to_json()) == arch
True
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgessl.errors import BadInput

FORMAT = "edgessl-arch/1"
_TOP_FIELDS = {"format", "space", "resolution", "width_mult", "stages"}
_BLOCK_FIELDS = {"kernel", "expand"}
# space name -> its check: raises BadInput naming the first field outside the space's choices
_CHECKS: dict[str, Callable[[Arch], None]] = {}


def register_space(name: str, check: Callable[[Arch], None]) -> None:
    """Validate every Arch of space ``name`` with ``check`` from now on."""
    _CHECKS[name] = check


def _number(value: float) -> float | int:
    """Integral expand ratios print as ints (4, not 4.0) so the JSON form is canonical."""
    return int(value) if float(value).is_integer() else float(value)


@dataclass(frozen=True)
class Block:
    """One block's choice: kernel size and expand ratio."""

    kernel: int
    expand: float

    def __str__(self) -> str:
        return f"k{self.kernel}e{_number(self.expand)}"


@dataclass(frozen=True)
class Arch:
    """A network of a search space. Construction validates against the space's choices."""

    space: str
    resolution: int
    width_mult: float
    stages: tuple[tuple[Block, ...], ...]

    def __post_init__(self) -> None:
        check = _CHECKS.get(self.space)
        if check is None:
            known = ", ".join(_CHECKS) or "none registered (import edgessl.spaces)"
            raise BadInput(f"unknown space {self.space!r}; known: {known}")
        check(self)

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(len(s) for s in self.stages)

    def replace(self, **changes: Any) -> Arch:
        """A copy with some fields changed (validated again)."""
        fields = {"space": self.space, "resolution": self.resolution,
                  "width_mult": self.width_mult, "stages": self.stages, **changes}
        return Arch(**fields)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "space": self.space,
            "resolution": self.resolution,
            "width_mult": float(self.width_mult),
            "stages": [[{"kernel": b.kernel, "expand": _number(b.expand)} for b in s]
                       for s in self.stages],
        }

    def to_json(self, indent: int | None = None) -> str:
        """Canonical JSON: fixed key order, no spaces when ``indent`` is None."""
        seps = (",", ":") if indent is None else (",", ": ")
        return json.dumps(self.to_dict(), indent=indent, separators=seps)

    def __str__(self) -> str:
        """Compact form for logs: ``mobilenet@224w1.0:k3e4,k5e6|k7e3,...``."""
        stages = "|".join(",".join(str(b) for b in s) for s in self.stages)
        return f"{self.space}@{self.resolution}w{float(self.width_mult)}:{stages}"

    @classmethod
    def from_dict(cls, data: Any) -> Arch:
        """Parse and validate; every error names the field and what is allowed."""
        if not isinstance(data, dict):
            raise BadInput(f"arch: expected a JSON object, got {type(data).__name__}")
        unknown = set(data) - _TOP_FIELDS
        if unknown:
            raise BadInput(f"arch: unknown field {sorted(unknown)[0]!r}; "
                           f"allowed: {sorted(_TOP_FIELDS)}")
        missing = _TOP_FIELDS - set(data)
        if missing:
            raise BadInput(f"arch: missing field {sorted(missing)[0]!r}")
        if data["format"] != FORMAT:
            raise BadInput(f"arch: format {data['format']!r} is not supported; expected {FORMAT!r}")
        res, width = data["resolution"], data["width_mult"]
        if not isinstance(res, int) or isinstance(res, bool):
            raise BadInput(f"arch: resolution {res!r} must be an integer")
        if not isinstance(width, (int, float)) or isinstance(width, bool):
            raise BadInput(f"arch: width_mult {width!r} must be a number")
        stages = data["stages"]
        if not isinstance(stages, list):
            raise BadInput("arch: stages must be a list of lists of blocks")
        parsed = []
        for i, stage in enumerate(stages):
            if not isinstance(stage, list):
                raise BadInput(f"arch: stages[{i}] must be a list of blocks")
            blocks = []
            for j, b in enumerate(stage):
                where = f"stages[{i}][{j}]"
                if not isinstance(b, dict):
                    raise BadInput(f"arch: {where} must be an object with kernel and expand")
                bad = set(b) ^ _BLOCK_FIELDS
                if bad:
                    raise BadInput(f"arch: {where} field {sorted(bad)[0]!r} unexpected or "
                                   f"missing; a block has exactly {sorted(_BLOCK_FIELDS)}")
                k, e = b["kernel"], b["expand"]
                if not isinstance(k, int) or isinstance(k, bool):
                    raise BadInput(f"arch: {where}.kernel {k!r} must be an integer")
                if not isinstance(e, (int, float)) or isinstance(e, bool):
                    raise BadInput(f"arch: {where}.expand {e!r} must be a number")
                blocks.append(Block(k, _number(e)))
            parsed.append(tuple(blocks))
        if not isinstance(data["space"], str):
            raise BadInput(f"arch: space {data['space']!r} must be a string")
        return cls(data["space"], res, float(width), tuple(parsed))

    @classmethod
    def from_json(cls, text: str) -> Arch:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"arch: not valid JSON ({exc.msg} at line {exc.lineno} "
                           f"column {exc.colno})") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> Arch:
        """Read an arch JSON file; a missing or unreadable file is bad input."""
        p = Path(path)
        if not p.is_file():
            raise BadInput(f"arch file not found: {p}")
        try:
            text = p.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"arch file {p} cannot be read: {exc}") from None
        try:
            return cls.from_json(text)
        except BadInput as exc:
            raise BadInput(f"{p}: {exc}") from None

    def save(self, path: str | Path) -> None:
        from edgessl.utils import atomic_write_text

        atomic_write_text(path, self.to_json(indent=2) + "\n")
