"""The population of a study: a handcrafted family, or a file of arch JSON lines and names.

``--variants resnet`` (any of :data:`edgessl.baselines.FAMILIES`) takes a family's members;
``--variants FILE`` reads one variant per line: an arch JSON (``edgessl space sample`` writes
them) or a baseline / family-member name; blank lines and ``#`` comments are skipped.
``max_mflops`` keeps the variants at or under a budget, then ``limit`` keeps that many spread
evenly over the MFLOPs range (the cheapest, the dearest and evenly spaced ranks between).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgessl.arch import Arch
from edgessl.baselines import FAMILIES, get_baseline, get_family
from edgessl.cost.flops import model_cost
from edgessl.errors import BadInput


@dataclass(frozen=True)
class Variant:
    """One network of the population: an Arch or a canonical baseline / member name, and
    its cost (MFLOPs with a 1000-class classifier: ``edgessl cost``'s convention)."""

    ref: Arch | str
    mflops: float
    params: int

    @property
    def name(self) -> str:
        """What tables show: the name, or the Arch's compact form."""
        return str(self.ref)

    @property
    def ref_text(self) -> str:
        """What a variants file holds for it: the name, or the arch JSON."""
        return self.ref.to_json() if isinstance(self.ref, Arch) else self.ref

    @property
    def slug(self) -> str:
        """A file name for its results (names are file-safe; Archs by a digest)."""
        if isinstance(self.ref, Arch):
            digest = hashlib.sha256(self.ref.to_json().encode()).hexdigest()[:16]
            return f"{self.ref.space}-{digest}"
        return self.ref


def _read_file(path: Path) -> list[Arch | str]:
    refs: list[Arch | str] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            ref = Arch.from_json(line) if line.startswith("{") else get_baseline(line).name
        except BadInput as exc:
            raise BadInput(f"--variants {path} line {i}: {exc}") from None
        key = ref.to_json() if isinstance(ref, Arch) else ref
        if key in seen:
            raise BadInput(f"--variants {path} line {i} repeats line {seen[key]}")
        seen[key] = i
        refs.append(ref)
    if not refs:
        raise BadInput(f"--variants {path} lists no variants (one arch JSON or baseline name "
                       "per line)")
    return refs


def read_refs(spec: str) -> list[Arch | str]:
    """The references ``--variants SPEC`` names: a family's members or a file's lines."""
    if spec in FAMILIES:
        return [m.name for m in get_family(spec).members()]
    path = Path(spec)
    if path.is_dir():
        raise BadInput(f"--variants {spec} is a folder; give a family ({', '.join(FAMILIES)}) "
                       "or a file of arch JSON lines")
    if not path.is_file():
        raise BadInput(f"--variants {spec!r}: no such family ({', '.join(FAMILIES)}) or file")
    return _read_file(path)


def spread(variants: list[Variant], limit: int) -> list[Variant]:
    """``limit`` variants evenly spread over the MFLOPs ranks (cheapest and dearest kept),
    in MFLOPs order."""
    ordered = sorted(variants, key=lambda v: (v.mflops, v.name))
    if limit >= len(ordered):
        return ordered
    picks = np.round(np.linspace(0, len(ordered) - 1, limit)).astype(int)
    return [ordered[i] for i in picks]


def resolve_variants(spec: str, limit: int | None = None,
                     max_mflops: float | None = None) -> list[Variant]:
    """The variants of ``--variants SPEC``, costed, filtered by ``max_mflops`` and thinned to
    ``limit`` (see the module text)."""
    if limit is not None and limit < 1:
        raise BadInput(f"--limit {limit} must be at least 1")
    if max_mflops is not None and not max_mflops > 0:
        raise BadInput(f"--max-mflops {max_mflops} must be positive")
    variants = []
    for ref in read_refs(spec):
        cost = model_cost(ref)
        variants.append(Variant(ref, cost.mflops, cost.params))
    if max_mflops is not None:
        kept = [v for v in variants if v.mflops <= max_mflops]
        if not kept:
            cheapest = min(v.mflops for v in variants)
            raise BadInput(f"--max-mflops {max_mflops} keeps none of --variants {spec} (the "
                           f"cheapest has {cheapest:.1f} MFLOPs)")
        variants = kept
    return spread(variants, limit) if limit is not None else variants


def family_table() -> list[dict]:
    """What ``edgessl study --list`` shows: each family's size, cost range and contents."""
    rows = []
    for fam in FAMILIES.values():
        members = fam.members()
        costs = [m.analytic_cost(224) for m in members]
        mflops = [c[0] / 1e6 for c in costs]
        rows.append({"family": fam.name, "members": len(members),
                     "min_mflops": round(min(mflops), 2), "max_mflops": round(max(mflops), 2),
                     "min_mparams": round(min(c[1] for c in costs) / 1e6, 3),
                     "max_mparams": round(max(c[1] for c in costs) / 1e6, 3),
                     "example": members[0].name, "description": fam.description})
    return rows
