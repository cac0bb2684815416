"""``run_search``: budgeted NSGA-II search of a trained supernet, end to end, from Python.

>>> from edgessl.search import SearchConfig, run_search
>>> result = run_search(SearchConfig(out="results/s600", max_mflops=600))
>>> result.best.arch, result.best.mflops
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgessl.dist import gather_objects, init_distributed, resolve_device, shutdown
from edgessl.errors import BadInput
from edgessl.search.budget import Budget, Constraints
from edgessl.search.evolution import OBJECTIVES, pareto_mask, run_nsga2
from edgessl.search.proxy import ProxyScorer, load_supernet, prepare_proxy_data
from edgessl.search.results import (
    PROXY_LABELS,
    Candidate,
    SearchResult,
    objectives_matrix,
    plot_pareto,
    write_candidates,
    write_pareto,
    write_report,
)
from edgessl.utils import GracefulStop

DEFAULT_SUPERNET = "supernet-fashion-mnist-mobilenet.ckpt"
MIN_PROXY_RESOLUTION = 32  # the spaces downsample 32x: smaller inputs vanish


DEFAULT_DATA = "fashion-mnist-sample"
HELD_OUT_BANK, HELD_OUT_TEST = 5000, 2000  # the pick's held-out check (report.md)


def default_data(ckpt: Path, supernet_info: dict[str, Any]) -> tuple[str, str]:
    """(data the proxy scores on, why) when ``--data`` is not given: for the shipped supernet
    the built-in Fashion-MNIST sample (its training domain, inside the package), for any
    other supernet the data it was trained on (scoring another domain ranks the wrong thing)."""
    if ckpt.resolve() == default_supernet().resolve():
        return DEFAULT_DATA, "the shipped supernet's domain, built in"
    trained_on = supernet_info.get("data")
    if not trained_on:
        raise BadInput(f"supernet {ckpt} records no training data; pass --data")
    return str(trained_on), "the data the supernet was trained on (no --data given)"


def default_supernet() -> Path:
    """The supernet shipped in the package (SSL on Fashion-MNIST; the README has the command)."""
    return Path(__file__).resolve().parent.parent / "assets" / DEFAULT_SUPERNET


@dataclass
class SearchConfig:
    """Everything ``edgessl search`` takes; defaults are the built-in demo."""

    out: str | Path = "results/search"
    max_mflops: float | None = 600.0
    max_latency_ms: float | None = None
    max_mparams: float | None = None
    latency_table: str | None = None
    supernet: str | None = None
    data: str | None = None  # None: see default_data()
    val_data: str | None = None  # the validation folder of data (never read by the search)
    objectives: tuple[str, ...] = ("accuracy", "mflops")
    population: int = 16
    generations: int = 6
    seed: int = 0
    resolution: int = 224
    proxy_resolution: int | None = None
    device: str = "auto"
    bank: int = 500
    val: int = 300
    refine: int = 8  # re-score this many best candidates on a larger pool; 0: off
    refine_images: int = 5000  # the pool: labelled training images, leave-one-out
    use_labels: bool = True
    held_out: bool = True  # after the search, the pick's kNN on the test split (report only)
    save_pareto: bool = False  # also pareto/NN.ckpt: every Pareto member, inherited weights

    def budget(self) -> Budget:
        return Budget(self.max_mflops, self.max_latency_ms, self.max_mparams)

    @property
    def refine_pool(self) -> int:
        """Images to prepare for the refine step (0: no refine step)."""
        return self.refine_images if self.refine else 0


def _check_objectives(cfg: SearchConfig) -> tuple[str, ...]:
    objs = tuple(cfg.objectives)
    for o in objs:
        if o not in OBJECTIVES:
            raise BadInput(f"--objectives: unknown objective {o!r}; known: {', '.join(OBJECTIVES)}")
    if "accuracy" not in objs:
        raise BadInput("--objectives must include accuracy")
    if "latency" in objs and cfg.latency_table is None:
        raise BadInput("--objectives latency needs --latency-table")
    if cfg.population < 4:
        raise BadInput(f"--population {cfg.population} must be at least 4")
    for name, value, low in (("--generations", cfg.generations, 1), ("--seed", cfg.seed, 0),
                             ("--proxy-bank", cfg.bank, 1), ("--proxy-val", cfg.val, 1),
                             ("--refine", cfg.refine, 0),
                             ("--refine-images", cfg.refine_images, 20)):
        if value < low:
            raise BadInput(f"{name} {value} must be at least {low}")
    if cfg.proxy_resolution is not None and cfg.proxy_resolution < MIN_PROXY_RESOLUTION:
        raise BadInput(f"--proxy-resolution {cfg.proxy_resolution} is too small; use at least "
                       f"{MIN_PROXY_RESOLUTION}")
    if Path(cfg.out).exists() and not Path(cfg.out).is_dir():
        raise BadInput(f"--out {cfg.out} exists and is not a folder")
    return objs


class SearchSession:
    """A validated, loaded search, ready to run: every bad input is refused before this
    exists (cheap checks first), so nothing is written for a bad command line."""

    def __init__(self, cfg: SearchConfig):
        from edgessl.spaces import get_space

        self.cfg = cfg
        self.objectives = _check_objectives(cfg)
        budget = cfg.budget()  # validates the bounds before anything is loaded
        self.table = None
        if cfg.latency_table is not None:
            from edgessl.cost.latency import LatencyTable

            self.table = LatencyTable.load(cfg.latency_table)
        self.ckpt = Path(cfg.supernet) if cfg.supernet else default_supernet()
        if self.ckpt.is_dir():
            raise BadInput(f"--supernet {self.ckpt} is a folder; give its checkpoint file "
                           "(e.g. RUN/last.ckpt)")
        if not self.ckpt.is_file():
            raise BadInput(f"supernet checkpoint not found: {self.ckpt}")
        self.supernet, self.sinfo = load_supernet(str(self.ckpt))
        self.space = get_space(self.sinfo["space"])
        if cfg.resolution not in self.space.resolutions:
            raise BadInput(f"--resolution {cfg.resolution} not in space {self.space.name!r}; "
                           f"allowed: {', '.join(map(str, self.space.resolutions))}")
        self.constraints = Constraints(self.space, budget, cfg.resolution, self.table)
        self.constraints.check_achievable()
        self.device = resolve_device(cfg.device)
        self.proxy_res = int(cfg.proxy_resolution or self.sinfo.get("resolution") or 32)
        self.env = init_distributed(self.device)  # first: rank 0 indexes a folder, others wait
        self.data, self.data_reason = ((cfg.data, "given") if cfg.data
                                       else default_data(self.ckpt, self.sinfo))
        data = prepare_proxy_data(self.data, self.proxy_res, cfg.bank, cfg.val, seed=cfg.seed,
                                  use_labels=cfg.use_labels, val_data=cfg.val_data,
                                  pool=cfg.refine_pool)
        self.scorer = ProxyScorer(self.supernet, data, self.device)

    def held_out(self, arch, bank: int = HELD_OUT_BANK, test: int = HELD_OUT_TEST) -> dict:
        """kNN accuracy of ``arch`` (inherited weights, BN re-estimated) on the data's test
        split: reported with the pick, never used to choose it."""
        from edgessl.evaluate import evaluate_backbone

        net = self.supernet.extract(arch)
        r = evaluate_backbone(net, self.data, self.proxy_res, "knn", bank, test, self.device,
                              val_data=self.cfg.val_data)
        return {k: r[k] for k in ("knn", "bank_size", "test_size")}

    def run(self, progress: Callable[[dict[str, Any]], None] | None = None) -> SearchResult:
        """Search and write every output (rank 0). Ctrl-C stops after the generation in
        progress and still writes what was found (``result.interrupted``)."""
        cfg, env, scorer, space = self.cfg, self.env, self.scorer, self.space
        constraints = self.constraints
        records: dict = {}
        t0 = time.time()
        state = {"generations_done": 0}

        def score(genes: np.ndarray, costs: dict[str, np.ndarray]) -> np.ndarray:
            archs = [space.decode(g) for g in genes]
            todo = list(dict.fromkeys(a for a in archs if a not in scorer.cache))
            mine = {a: scorer.score(a) for a in todo[env.rank::env.world]}
            if env.active:
                for part in gather_objects(env, mine):
                    scorer.cache.update(part)
            for i, a in enumerate(archs):
                lat = float(costs["latency_ms"][i]) if "latency_ms" in costs else None
                records[a] = Candidate(a, scorer.cache[a], float(costs["mflops"][i]),
                                       float(costs["mparams"][i]), lat)
            return np.array([scorer.cache[a] for a in archs])

        def on_generation(gen: int, X: np.ndarray, F: np.ndarray) -> None:
            state["generations_done"] = gen
            if env.main:  # what is scored so far survives a kill (Ctrl-C writes everything)
                Path(cfg.out).mkdir(parents=True, exist_ok=True)
                write_candidates(Path(cfg.out), list(records.values()))
            if progress is not None:
                best = max(records.values(), key=lambda c: (c.score, -c.mflops), default=None)
                progress({"generation": gen, "generations": cfg.generations,
                          "evaluated": len(records), "best": best})

        def should_stop() -> bool:  # every rank stops after the same generation
            if env.active:
                return any(gather_objects(env, stop.requested))
            return stop.requested

        interrupted = False
        try:
            with GracefulStop() as stop:
                interrupted = run_nsga2(constraints, self.objectives, score, cfg.population,
                                        cfg.generations, cfg.seed, on_generation,
                                        should_stop=should_stop)
        except KeyboardInterrupt:  # a second Ctrl-C: stop inside the generation
            interrupted = True
        cands = list(records.values())
        pareto: list[Candidate] = []
        if cands:
            mask = pareto_mask(objectives_matrix(cands, self.objectives))
            pareto = sorted((c for c, m in zip(cands, mask, strict=True) if m),
                            key=lambda c: (c.mflops, -c.score, str(c.arch)))
        best = max(cands, key=lambda c: (c.score, -c.mflops)) if cands else None
        refine = None
        if best is not None and scorer.pool_size and not interrupted:  # 0: --refine 0
            refined = self._refine(cands, progress)
            records.update({c.arch: c for c in refined})
            cands = list(records.values())
            pareto = [records[c.arch] for c in pareto]
            best = max(refined, key=lambda c: (c.refined, -c.mflops))
            refine = {"top": len(refined), "images": scorer.pool_size}
        config = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
        info = {"space": space.name, "resolution": cfg.resolution,
                "budget": cfg.budget().to_dict(), "supernet": str(self.ckpt),
                "ssl": self.sinfo.get("ssl"), "supernet_data": self.sinfo.get("data"),
                "proxy": scorer.kind, "data": self.data,
                "data_reason": self.data_reason, "proxy_resolution": self.proxy_res,
                "population": cfg.population, "generations": cfg.generations,
                "generations_done": state["generations_done"], "seed": cfg.seed,
                "refine": refine,
                "seconds": time.time() - t0, "world": env.world,
                "objectives": list(self.objectives), "latency_table": cfg.latency_table,
                "latency_settings": None if self.table is None else {
                    k: self.table.meta.get(k)
                    for k in ("dtype", "backend", "threads", "batch", "device")},
                "config": config}
        if env.main and best is not None and scorer.kind == "knn" and cfg.held_out:
            info["held_out"] = self.held_out(best.arch)
        result = SearchResult(best, pareto, cands, info, interrupted)
        if env.main:
            write_outputs(Path(cfg.out), result, scorer, self.table is not None, cfg)
        shutdown(env)
        return result


    def _refine(self, cands: list[Candidate],
                progress: Callable[[dict[str, Any]], None] | None) -> list[Candidate]:
        """The ``cfg.refine`` best candidates by screening score, each re-scored by
        :meth:`ProxyScorer.refine` (shared out over the ranks like the screening)."""
        env, scorer = self.env, self.scorer
        top = sorted(cands, key=lambda c: (-c.score, c.mflops))[:self.cfg.refine]
        mine = top[env.rank::env.world]
        for i, c in enumerate(mine):
            if progress is not None:  # after the last generation: multi-set bars place it so
                progress({"refine": i, "refine_total": len(mine),
                          "generation": self.cfg.generations})
            scorer.refine(c.arch)
        if env.active:
            for part in gather_objects(env, {c.arch: scorer.refined[c.arch] for c in mine}):
                scorer.refined.update(part)
        return [replace(c, refined=scorer.refined[c.arch]) for c in top]


def run_search(cfg: SearchConfig,
               progress: Callable[[dict[str, Any]], None] | None = None) -> SearchResult:
    """Validate, load, search and write every output; see :class:`SearchSession`."""
    return SearchSession(cfg).run(progress)


def write_outputs(out: Path, result: SearchResult, scorer: ProxyScorer, with_latency: bool,
                  cfg: SearchConfig) -> None:
    """best.arch.json, best.ckpt, pareto.{json,csv,png}, candidates.csv, report.md; with
    ``cfg.save_pareto`` also pareto/NN.ckpt, one per Pareto member (pareto.json's order)."""
    from edgessl.checkpoint import save_model
    from edgessl.cost.flops import model_cost

    nets: dict = {}  # the pick is also a Pareto member: extract and re-estimate BN once

    def save(path: Path, cand: Candidate) -> None:
        """A standalone checkpoint of ``cand``: inherited weights, BN as the proxy set it."""
        if cand.arch not in nets:
            nets[cand.arch] = scorer.subnet(cand.arch).cpu()
        save_model(path, cand.arch, nets[cand.arch],
                   {"source": "search", "score": cand.score, "refined": cand.refined,
                    "proxy": scorer.kind,
                    "proxy_resolution": result.info["proxy_resolution"],
                    "train_resolution": result.info["proxy_resolution"],
                    "supernet": result.info["supernet"], "mflops": cand.mflops})

    out.mkdir(parents=True, exist_ok=True)
    members = None
    if cfg.save_pareto:
        (out / "pareto").mkdir(exist_ok=True)
        members = [f"pareto/{i:02d}.ckpt" for i in range(len(result.pareto))]
        for name, cand in zip(members, result.pareto, strict=True):
            save(out / name, cand)
        for stale in (out / "pareto").glob("[0-9][0-9].ckpt"):  # an earlier, larger front's
            if f"pareto/{stale.name}" not in members:
                stale.unlink()
    write_pareto(out, result.pareto, members)
    write_candidates(out, result.candidates)
    x = "latency" if with_latency and cfg.max_latency_ms is not None else "mflops"
    baselines = {}
    if x == "mflops":
        right = 1.3 * max([c.mflops for c in result.candidates] + [cfg.max_mflops or 0])
        for name in ("mobilenet_v3_small", "mobilenet_v3_large", "mobilenet_v2", "resnet18",
                     "resnet50"):
            cost = model_cost(name, cfg.resolution).mflops
            if cost <= right:  # only baselines inside the plotted range
                baselines[name] = cost
    if result.candidates:
        plot_pareto(out, result, x, cfg.max_mflops if x == "mflops" else cfg.max_latency_ms,
                    baselines, f"{PROXY_LABELS[scorer.kind]} (proxy)")
    if result.best is not None:
        result.best.arch.save(out / "best.arch.json")
        save(out / "best.ckpt", result.best)
    write_report(out, result, pareto_saved=bool(members))
