"""NSGA-II over gene vectors (pymoo), with feasible-only sampling and repair.

Objectives are minimised: ``-score``, MFLOPs and (with a table) latency. Constraints are
checked on genes before any network is built; offspring that break them are repaired by
re-mutation, and the rare ones still infeasible are never scored (constraint violation G > 0).
Scoring goes through a callback, so the caller decides how (one process or sharded over ranks).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.evaluator import Evaluator
from pymoo.core.mutation import Mutation
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair
from pymoo.core.sampling import Sampling
from pymoo.operators.crossover.ux import UX
from pymoo.problems.static import StaticProblem
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from edgessl.search.budget import Constraints

OBJECTIVES = ("accuracy", "mflops", "latency")


class GeneProblem(Problem):
    """Integer genes of a space at a fixed resolution; evaluation is done outside (ask/tell)."""

    def __init__(self, constraints: Constraints, n_obj: int):
        sizes = np.array(constraints.space.gene_sizes())
        xl = np.zeros(len(sizes))
        xu = (sizes - 1).astype(float)
        res = constraints.space.resolutions.index(constraints.resolution)
        xl[0] = xu[0] = res
        super().__init__(n_var=len(sizes), n_obj=n_obj, n_ieq_constr=1, xl=xl, xu=xu)
        self.constraints = constraints


class FeasibleSampling(Sampling):
    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        return problem.constraints.sample_feasible(n_samples, random_state).astype(float)


class ResetMutation(Mutation):
    """Each gene is reset to a uniformly random option with probability ``rate``."""

    def __init__(self, rate: float = 0.1):
        super().__init__(prob=1.0)
        self.rate = rate

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        X = np.round(X).astype(np.int64)
        sizes = (problem.xu - problem.xl + 1).astype(np.int64)
        fresh = problem.xl.astype(np.int64) + random_state.integers(0, sizes, size=X.shape)
        return np.where(random_state.random(X.shape) < self.rate, fresh, X).astype(float)


class FeasibleRepair(Repair):
    """Round genes; re-mutate infeasible rows a few times, then fall back to fresh samples."""

    def __init__(self, rng_seed: int = 0, tries: int = 20):
        super().__init__()
        self.rng = np.random.default_rng(rng_seed)
        self.tries = tries

    def _do(self, problem, X, **kwargs):
        X = np.clip(np.round(X), problem.xl, problem.xu).astype(np.int64)
        cons = problem.constraints
        bad = np.flatnonzero(~cons.feasible(X))
        sizes = (problem.xu - problem.xl + 1).astype(np.int64)
        for _ in range(self.tries):
            if not bad.size:
                break
            trial = X[bad].copy()
            reset = self.rng.random(trial.shape) < 0.2
            trial = np.where(reset, problem.xl.astype(np.int64)
                             + self.rng.integers(0, sizes, size=trial.shape), trial)
            ok = cons.feasible(trial)
            X[bad[ok]] = trial[ok]
            bad = bad[~ok]
        if bad.size:
            X[bad] = cons.sample_feasible(len(bad), self.rng)
        return X.astype(float)


def pareto_mask(F: np.ndarray) -> np.ndarray:
    """Rows of F (minimised objectives) on the first non-dominated front."""
    if len(F) == 0:
        return np.zeros(0, dtype=bool)
    front = NonDominatedSorting().do(F, only_non_dominated_front=True)
    mask = np.zeros(len(F), dtype=bool)
    mask[front] = True
    return mask


def run_nsga2(constraints: Constraints, objectives: tuple[str, ...],
              score: Callable[[np.ndarray, dict[str, np.ndarray]], np.ndarray],
              population: int, generations: int,
              seed: int, on_generation: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
              mutation_rate: float = 0.1,
              should_stop: Callable[[], bool] | None = None) -> bool:
    """Evolve; ``score(genes, costs) -> proxy scores`` is called once per generation on the
    feasible rows, with their already computed costs. ``on_generation(gen, genes, F)`` sees
    every evaluated population. Results live with the caller (its score cache). After each
    generation ``should_stop()`` is asked; True ends the search early. Returns whether it
    stopped early."""
    problem = GeneProblem(constraints, len(objectives))
    algo = NSGA2(pop_size=population, sampling=FeasibleSampling(), crossover=UX(),
                 mutation=ResetMutation(mutation_rate), repair=FeasibleRepair(seed),
                 eliminate_duplicates=True)
    algo.setup(problem, termination=("n_gen", generations), seed=seed, verbose=False)
    gen = 0
    while algo.has_next():
        pop = algo.ask()
        X = np.round(pop.get("X")).astype(np.int64)
        costs = constraints.measure(X)
        G = constraints.violation(costs)
        feasible = G <= 0
        scores = np.full(len(X), 0.0)
        if feasible.any():
            scores[feasible] = score(X[feasible],
                                     {k: v[feasible] for k, v in costs.items()})
        columns = {"accuracy": -scores, "mflops": costs["mflops"],
                   "latency": costs.get("latency_ms", np.zeros(len(X)))}
        F = np.stack([columns[o] for o in objectives], axis=1)
        Evaluator().eval(StaticProblem(problem, F=F, G=G[:, None]), pop)
        algo.tell(infills=pop)
        gen += 1
        if on_generation is not None:
            on_generation(gen, X, F)
        if should_stop is not None and should_stop():
            return True
    return False
