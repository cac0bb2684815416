"""What a profile measures: every distinct block of a (sub-)space, boundary probes, subnets.

A :class:`Choices` restricts a space to some resolutions, widths, kernels and expand ratios (the
whole space by default); :func:`enumerate_specs` lists every layout spec any Arch of it can
contain, keyed by ``spec.key``, plus the boundary probes (see :mod:`edgessl.cost.latency`).
Blocks are exported and timed like whole networks (:func:`edgessl.deploy.bench.module_session`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from torch import nn

from edgessl.arch import Arch, Block
from edgessl.cost.latency import probe_key
from edgessl.errors import BadInput
from edgessl.ops import layers
from edgessl.spaces import SearchSpace


@dataclass(frozen=True)
class Choices:
    """A sub-space: the values of each elastic dimension that a table covers."""

    resolutions: tuple[int, ...]
    width_mults: tuple[float, ...]
    kernels: tuple[int, ...]
    expands: tuple[float, ...]

    @classmethod
    def of(cls, space: SearchSpace, resolutions=None, width_mults=None, kernels=None,
           expands=None) -> Choices:
        """The space's own values where an argument is None/empty; others are checked."""
        def pick(name: str, given, allowed):
            if not given:
                return tuple(allowed)
            bad = [v for v in given if v not in allowed]
            if bad:
                raise BadInput(f"--{name.replace('_', '-')} {bad[0]} not in space "
                               f"{space.name!r}; allowed: {', '.join(map(str, allowed))}")
            return tuple(sorted(set(given)))

        return cls(pick("resolution", resolutions, space.resolutions),
                   pick("width_mult", [float(w) for w in width_mults or []], space.width_mults),
                   pick("kernel", kernels, space.kernels),
                   pick("expand", [float(e) for e in expands or []], space.expands))

    def to_dict(self) -> dict:
        return {k: list(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ProbeSpec:
    """``n`` depthwise 1x1 convs on an HxWxC tensor: ``2 t(1) - t(2)`` is a boundary's cost."""

    in_ch: int
    hw: int
    n: int
    kind = "probe"

    @property
    def key(self) -> str:
        return probe_key(self.hw, self.in_ch, self.n)


def build_module(spec) -> nn.Module:
    """Eval-mode module for a layout spec or probe (random init: timing only)."""
    if isinstance(spec, ProbeSpec):
        module = nn.Sequential(*[nn.Conv2d(spec.in_ch, spec.in_ch, 1, groups=spec.in_ch)
                                 for _ in range(spec.n)])
    else:
        module = layers.build(spec)
    return module.eval()


def enumerate_specs(space: SearchSpace, choices: Choices) -> dict[str, object]:
    """key -> spec for every block (stem, blocks, head) and boundary probe the sub-space uses."""
    specs: dict[str, object] = {}
    probes: dict[str, ProbeSpec] = {}
    for r in choices.resolutions:
        for w in choices.width_mults:
            pre, post = space.fixed_specs(r, w)
            chain = [*pre]
            for i, depths in enumerate(space.stage_depths):
                for j in range(max(depths)):
                    chain += [space.block(r, w, i, j, k, e)
                              for k in choices.kernels for e in choices.expands]
            for s in [*chain, *post]:
                specs.setdefault(s.key, s)
            for s in [*chain, *post[:-1]]:
                for n in (1, 2):
                    p = ProbeSpec(s.out_ch, s.out_hw, n)
                    probes.setdefault(p.key, p)
    return {**specs, **probes}


def sample_arch(space: SearchSpace, choices: Choices, rng: np.random.Generator,
                resolution: int) -> Arch:
    """A uniformly random Arch of the sub-space at ``resolution``."""
    depths = [int(rng.choice(d)) for d in space.stage_depths]
    stages = tuple(tuple(Block(int(rng.choice(choices.kernels)),
                               float(rng.choice(choices.expands))) for _ in range(d))
                   for d in depths)
    return Arch(space.name, resolution, float(rng.choice(choices.width_mults)), stages)


def input_shape(spec, batch: int) -> tuple[int, int, int, int]:
    return (batch, spec.in_ch, spec.hw, spec.hw)


__all__ = ["Choices", "ProbeSpec", "build_module", "enumerate_specs", "sample_arch",
           "input_shape"]
