"""The search-space interface: allowed choices, validation, gene encoding, sampling, cost.

A space turns an :class:`Arch` into a :class:`Layout` of block specs. Everything else (exact
MACs and params, the static network, the supernet, latency keys) is derived from that layout,
so a new space is one subclass that states its choices and writes ``_block_spec``. Cost and
latency code read the pieces through :meth:`SearchSpace.fixed_specs` and
:meth:`SearchSpace.block` (cached: a table lookup or a cost sum asks for the same few specs
thousands of times).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cache

import numpy as np

from edgessl.arch import Arch, Block
from edgessl.errors import BadInput
from edgessl.ops.specs import LayerSpec, LinearSpec


@dataclass(frozen=True)
class Layout:
    """The block specs of one Arch: fixed ``pre`` layers, elastic ``stages``, fixed ``post``."""

    pre: tuple[LayerSpec, ...]
    stages: tuple[tuple[LayerSpec, ...], ...]
    post: tuple[LayerSpec, ...]

    def all(self) -> list[LayerSpec]:
        return [*self.pre, *(s for st in self.stages for s in st), *self.post]

    @property
    def feature_dim(self) -> int:
        return self.post[-1].out_ch


def _fmt(values) -> str:
    return ", ".join(str(v) for v in values)


class SearchSpace(ABC):
    """Choices of one family of networks. Subclasses set the class attributes below."""

    name: str
    resolutions: tuple[int, ...]
    width_mults: tuple[float, ...]
    stage_depths: tuple[tuple[int, ...], ...]
    kernels: tuple[int, ...]
    expands: tuple[float, ...]

    # ---- what a subclass writes (read through fixed_specs and block, which cache) ---------
    @abstractmethod
    def _pre_specs(self, resolution: int, width_mult: float) -> tuple[LayerSpec, ...]:
        """Fixed layers before the elastic stages (stem, first block)."""

    @abstractmethod
    def _block_spec(self, resolution: int, width_mult: float, stage: int, index: int,
                    kernel: int, expand: float) -> LayerSpec:
        """Block ``index`` of ``stage`` with one choice (input width/size follow from position)."""

    @abstractmethod
    def _post_specs(self, resolution: int, width_mult: float) -> tuple[LayerSpec, ...]:
        """Fixed layers after the stages (head up to the feature vector)."""

    # ---- block specs ------------------------------------------------------------------------
    @cache  # noqa: B019 - spaces are module-level singletons
    def fixed_specs(self, resolution: int, width_mult: float
                    ) -> tuple[tuple[LayerSpec, ...], tuple[LayerSpec, ...]]:
        """(pre, post): the fixed layers before the elastic stages (stem, first block) and
        after them (head up to the feature vector) at one resolution and width."""
        return (self._pre_specs(resolution, width_mult),
                self._post_specs(resolution, width_mult))

    @cache  # noqa: B019
    def block(self, resolution: int, width_mult: float, stage: int, index: int, kernel: int,
              expand: float) -> LayerSpec:
        """Block ``index`` of ``stage`` with the choice (``kernel``, ``expand``) at one
        resolution and width: the spec an Arch's layout holds in that slot."""
        return self._block_spec(resolution, width_mult, stage, index, kernel, expand)

    # ---- validation -------------------------------------------------------------------
    @property
    def n_stages(self) -> int:
        return len(self.stage_depths)

    def check(self, arch: Arch) -> None:
        """Raise :class:`BadInput` naming the first field outside the space's choices."""
        if arch.resolution not in self.resolutions:
            raise BadInput(f"arch: resolution {arch.resolution} not in space {self.name!r}; "
                           f"allowed: {_fmt(self.resolutions)}")
        if float(arch.width_mult) not in self.width_mults:
            raise BadInput(f"arch: width_mult {arch.width_mult} not in space {self.name!r}; "
                           f"allowed: {_fmt(self.width_mults)}")
        if len(arch.stages) != self.n_stages:
            raise BadInput(f"arch: stages has {len(arch.stages)} entries; space {self.name!r} "
                           f"has {self.n_stages} stages")
        for i, (stage, allowed) in enumerate(zip(arch.stages, self.stage_depths, strict=True)):
            if len(stage) not in allowed:
                raise BadInput(f"arch: depth of stages[{i}] is {len(stage)}; allowed: "
                               f"{_fmt(allowed)}")
            for j, b in enumerate(stage):
                if b.kernel not in self.kernels:
                    raise BadInput(f"arch: stages[{i}][{j}].kernel {b.kernel} not allowed; "
                                   f"allowed: {_fmt(self.kernels)}")
                if b.expand not in self.expands:
                    raise BadInput(f"arch: stages[{i}][{j}].expand {b.expand} not allowed; "
                                   f"allowed: {_fmt(self.expands)}")

    # ---- layout and cost ----------------------------------------------------------------
    def layout(self, arch: Arch) -> Layout:
        r, w = arch.resolution, float(arch.width_mult)
        stages = tuple(
            tuple(self.block(r, w, i, j, b.kernel, b.expand) for j, b in enumerate(stage))
            for i, stage in enumerate(arch.stages))
        pre, post = self.fixed_specs(r, w)
        return Layout(pre, stages, post)

    def cost(self, arch: Arch, num_classes: int = 1000) -> tuple[int, int]:
        """Exact (MACs, params) from the Arch alone; ``num_classes`` adds a linear classifier
        (1000 by default: the torchvision/OFA publishing convention)."""
        r, w = arch.resolution, float(arch.width_mult)
        macs, params = self._fixed_cost(r, w, num_classes)
        for i, stage in enumerate(arch.stages):
            for j, b in enumerate(stage):
                m, p = self._block_cost(r, w, i, j, b.kernel, b.expand)
                macs += m
                params += p
        return macs, params

    def mflops(self, arch: Arch, num_classes: int = 1000) -> float:
        return self.cost(arch, num_classes)[0] / 1e6

    def feature_dim(self, arch: Arch) -> int:
        return self.fixed_specs(arch.resolution, float(arch.width_mult))[1][-1].out_ch

    @cache  # noqa: B019
    def _block_cost(self, r: int, w: float, i: int, j: int, k: int, e: float) -> tuple[int, int]:
        return self.block(r, w, i, j, k, e).cost()

    @cache  # noqa: B019
    def _fixed_cost(self, r: int, w: float, num_classes: int) -> tuple[int, int]:
        pre, post = self.fixed_specs(r, w)
        specs = [*pre, *post]
        if num_classes:
            specs.append(LinearSpec(specs[-1].out_ch, num_classes))
        costs = [s.cost() for s in specs]
        return sum(m for m, _ in costs), sum(p for _, p in costs)

    # ---- genes: a fixed-length integer encoding for sampling and evolution ----------------
    @property
    def max_depths(self) -> tuple[int, ...]:
        return tuple(max(d) for d in self.stage_depths)

    def gene_sizes(self) -> list[int]:
        """Number of options per gene: resolution, width, depth per stage, then (kernel,
        expand) for every block slot (slots past a stage's depth are ignored)."""
        sizes = [len(self.resolutions), len(self.width_mults)]
        sizes += [len(d) for d in self.stage_depths]
        for d in self.max_depths:
            sizes += [len(self.kernels), len(self.expands)] * d
        return sizes

    def encode(self, arch: Arch) -> np.ndarray:
        genes = [self.resolutions.index(arch.resolution),
                 self.width_mults.index(float(arch.width_mult))]
        genes += [d.index(len(s)) for d, s in zip(self.stage_depths, arch.stages, strict=True)]
        for stage, dmax in zip(arch.stages, self.max_depths, strict=True):
            for j in range(dmax):
                if j < len(stage):
                    genes += [self.kernels.index(stage[j].kernel),
                              self.expands.index(stage[j].expand)]
                else:
                    genes += [0, 0]
        return np.asarray(genes, dtype=np.int64)

    def decode(self, genes) -> Arch:
        g = [int(v) for v in genes]
        n = self.n_stages
        depths = [self.stage_depths[i][g[2 + i]] for i in range(n)]
        pos = 2 + n
        stages = []
        for d, dmax in zip(depths, self.max_depths, strict=True):
            blocks = [Block(self.kernels[g[pos + 2 * j]], self.expands[g[pos + 2 * j + 1]])
                      for j in range(d)]
            stages.append(tuple(blocks))
            pos += 2 * dmax
        return Arch(self.name, self.resolutions[g[0]], self.width_mults[g[1]], tuple(stages))

    def _cost_lut(self, num_classes: int):
        """Arrays of block (MACs, params) [res, width, stage, slot, kernel, expand] and fixed
        (MACs, params) [res, width], for :meth:`cost_genes`."""
        key = ("cost_lut", num_classes)
        cache = self.__dict__.setdefault("_luts", {})
        if key not in cache:
            shape = (len(self.resolutions), len(self.width_mults), self.n_stages,
                     max(self.max_depths), len(self.kernels), len(self.expands), 2)
            lut = np.zeros(shape, dtype=np.float64)
            fixed = np.zeros((*shape[:2], 2), dtype=np.float64)
            for a, r in enumerate(self.resolutions):
                for b, w in enumerate(self.width_mults):
                    fixed[a, b] = self._fixed_cost(r, w, num_classes)
                    for i, dmax in enumerate(self.max_depths):
                        for j in range(dmax):
                            for c, k in enumerate(self.kernels):
                                for d, e in enumerate(self.expands):
                                    lut[a, b, i, j, c, d] = self._block_cost(r, w, i, j, k, e)
            cache[key] = (lut, fixed)
        return cache[key]

    def cost_genes(self, genes, num_classes: int = 1000) -> tuple[np.ndarray, np.ndarray]:
        """Exact (MACs, params) of a batch of gene vectors (N, G), vectorised: this is how the
        search checks hard constraints for tens of thousands of candidates at once."""
        total = self.sum_block_lut(genes, *self._cost_lut(num_classes))
        return total[:, 0], total[:, 1]

    def sum_block_lut(self, genes, lut: np.ndarray, fixed: np.ndarray) -> np.ndarray:
        """Per gene row: ``fixed[res, width]`` plus ``lut[res, width, stage, slot, kernel,
        expand]`` summed over the row's active blocks (any trailing axes are carried). The one
        vectorised walk behind exact costs and predicted latency of whole populations."""
        g = np.atleast_2d(np.asarray(genes, dtype=np.int64))
        res, wid = g[:, 0], g[:, 1]
        total = fixed[res, wid].astype(np.float64)
        pos = 2 + self.n_stages
        for i, dmax in enumerate(self.max_depths):
            depth = np.asarray(self.stage_depths[i])[g[:, 2 + i]]
            for j in range(dmax):
                vals = lut[res, wid, i, j, g[:, pos + 2 * j], g[:, pos + 2 * j + 1]]
                active = (j < depth).reshape(-1, *([1] * (vals.ndim - 1)))
                total += np.where(active, vals, 0.0)
            pos += 2 * dmax
        return total

    def active_blocks(self, genes) -> np.ndarray:
        """Number of elastic blocks each gene row uses (the sum of its stage depths)."""
        g = np.atleast_2d(np.asarray(genes, dtype=np.int64))
        return sum(np.asarray(d)[g[:, 2 + i]] for i, d in enumerate(self.stage_depths))

    # ---- sampling and variation -------------------------------------------------------------
    def _resolution_gene(self, resolution: int | None) -> int | None:
        if resolution is None:
            return None
        if resolution not in self.resolutions:
            raise BadInput(f"resolution {resolution} not in space {self.name!r}; allowed: "
                           f"{_fmt(self.resolutions)}")
        return self.resolutions.index(resolution)

    def sample(self, rng: np.random.Generator, resolution: int | None = None) -> Arch:
        """A uniformly random Arch (every gene uniform), optionally at a fixed resolution."""
        genes = np.array([rng.integers(s) for s in self.gene_sizes()])
        fixed = self._resolution_gene(resolution)
        if fixed is not None:
            genes[0] = fixed
        return self.decode(genes)

    def largest(self, resolution: int | None = None) -> Arch:
        genes = np.array(self.gene_sizes()) - 1
        fixed = self._resolution_gene(resolution)
        if fixed is not None:
            genes[0] = fixed
        return self.decode(genes)

    def smallest(self, resolution: int | None = None) -> Arch:
        genes = np.zeros(len(self.gene_sizes()), dtype=np.int64)
        fixed = self._resolution_gene(resolution)
        genes[0] = len(self.resolutions) - 1 if fixed is None else fixed
        return self.decode(genes)

    def mutate(self, arch: Arch, rng: np.random.Generator, prob: float = 0.1,
               keep_resolution: bool = True) -> Arch:
        """Resample each gene with probability ``prob``."""
        genes = self.encode(arch)
        for i, size in enumerate(self.gene_sizes()):
            if (i == 0 and keep_resolution) or rng.random() >= prob:
                continue
            genes[i] = rng.integers(size)
        return self.decode(genes)

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """Uniform crossover gene by gene."""
        ga, gb = self.encode(a), self.encode(b)
        return self.decode(np.where(rng.random(len(ga)) < 0.5, ga, gb))

    def count(self) -> int:
        """How many distinct architectures the space holds."""
        per_block = len(self.kernels) * len(self.expands)
        stages = math.prod(sum(per_block ** d for d in depths) for depths in self.stage_depths)
        return stages * len(self.width_mults) * len(self.resolutions)


def summarize(space: SearchSpace) -> dict:
    """Choices, size and cost range (smallest/largest at each resolution) of a space."""
    rows = []
    for r in space.resolutions:
        small, large = space.smallest(r), space.largest(r)
        (m0, p0), (m1, p1) = space.cost(small), space.cost(large)
        rows.append({"resolution": r, "min_mflops": round(m0 / 1e6, 3),
                     "max_mflops": round(m1 / 1e6, 3), "min_params": p0, "max_params": p1})
    return {
        "space": space.name,
        "resolutions": list(space.resolutions),
        "width_mults": list(space.width_mults),
        "depths_per_stage": [list(d) for d in space.stage_depths],
        "kernels": list(space.kernels),
        "expands": list(space.expands),
        "n_architectures": space.count(),
        "cost": rows,
    }
