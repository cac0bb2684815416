"""Hard constraints (MFLOPs, latency, params), checked on gene vectors before anything is built.

The checks are vectorised over a whole population (tens of thousands of candidates per
second): exact MACs/params from :meth:`SearchSpace.cost_genes`, latency from the table's
:meth:`LatencyTable.predict_genes`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgessl.errors import BadInput


@dataclass(frozen=True)
class Budget:
    """Upper bounds; None means unconstrained. Params are counted in millions."""

    max_mflops: float | None = None
    max_latency_ms: float | None = None
    max_mparams: float | None = None

    def __post_init__(self) -> None:
        for name, value in (("--budget-mflops", self.max_mflops),
                            ("--latency-ms", self.max_latency_ms),
                            ("--max-params", self.max_mparams)):
            if value is not None and not value > 0:
                raise BadInput(f"{name} {value:g} must be a positive number")

    def to_dict(self) -> dict:
        return asdict(self)


class Constraints:
    """The budget of one search: space, deployment resolution, optional latency table."""

    def __init__(self, space, budget: Budget, resolution: int, latency_table=None):
        if budget.max_latency_ms is not None and latency_table is None:
            raise BadInput("--latency-ms needs --latency-table (measure one with edgessl "
                           "profile, or use a table from latency_tables/)")
        if latency_table is not None:
            latency_table.require(space=space.name)
            if resolution not in latency_table.meta.get("resolutions", []):
                raise BadInput(f"latency table {latency_table.meta.get('path', '')} has no "
                               f"entries at resolution {resolution}; it covers "
                               f"{latency_table.meta.get('resolutions')}")
        self.space = space
        self.budget = budget
        self.resolution = resolution
        self.table = latency_table

    def measure(self, genes: np.ndarray) -> dict[str, np.ndarray]:
        """mflops, mparams and (with a table) latency_ms of each row of ``genes``."""
        macs, params = self.space.cost_genes(genes)
        out = {"mflops": macs / 1e6, "mparams": params / 1e6}
        if self.table is not None:
            out["latency_ms"] = self.table.predict_genes(genes)
        return out

    def violation(self, costs: dict[str, np.ndarray]) -> np.ndarray:
        """Sum of relative excesses over the bounds (0 = feasible), per row."""
        total = np.zeros_like(costs["mflops"])
        for key, bound in (("mflops", self.budget.max_mflops),
                           ("latency_ms", self.budget.max_latency_ms),
                           ("mparams", self.budget.max_mparams)):
            if bound is not None:
                total += np.maximum(costs[key] / bound - 1.0, 0.0)
        return total

    def feasible(self, genes: np.ndarray) -> np.ndarray:
        return self.violation(self.measure(genes)) <= 0

    def check_achievable(self) -> None:
        """An impossible budget is bad input stating the smallest achievable values."""
        smallest = self.space.smallest(self.resolution)
        costs = self.measure(self.space.encode(smallest)[None])
        problems = []
        for key, bound, flag, unit in (
                ("mflops", self.budget.max_mflops, "--budget-mflops", "MFLOPs"),
                ("latency_ms", self.budget.max_latency_ms, "--latency-ms", "ms"),
                ("mparams", self.budget.max_mparams, "--max-params", "M params")):
            if bound is not None and costs[key][0] > bound:
                problems.append(f"{flag} {bound:g} is below the smallest network of space "
                                f"{self.space.name!r} at resolution {self.resolution}: "
                                f"{costs[key][0]:.2f} {unit}")
        if problems:
            extra = ""
            if self.table is not None:
                extra = f" (smallest predicted latency {costs['latency_ms'][0]:.3f} ms)"
            raise BadInput("; ".join(problems) + extra)

    def sample_feasible(self, n: int, rng: np.random.Generator,
                        max_rounds: int = 200) -> np.ndarray:
        """``n`` random feasible gene vectors at the search resolution.

        Rejection sampling from uniform genes, mixed with random perturbations of the
        smallest network so that tight budgets (few uniform samples feasible) still fill up.
        """
        sizes = np.array(self.space.gene_sizes())
        smallest = self.space.encode(self.space.smallest(self.resolution))
        found: list[np.ndarray] = []
        for _ in range(max_rounds):
            m = max(4 * n, 256)
            uniform = rng.integers(0, sizes, size=(m, len(sizes)))
            prob = rng.uniform(0.05, 0.6, size=(m, 1))
            near = np.where(rng.random((m, len(sizes))) < prob, uniform, smallest)
            batch = np.concatenate([uniform, near])
            batch[:, 0] = smallest[0]
            batch = batch[rng.permutation(len(batch))]
            found.extend(batch[self.feasible(batch)])
            if len(found) >= n:
                return np.stack(found[:n])
        if not found:
            raise BadInput("no architecture met the budget after sampling; loosen it")
        reps = int(np.ceil(n / len(found)))
        return np.concatenate([np.stack(found)] * reps)[:n]
