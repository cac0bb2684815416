"""``run_study``: evaluate a population of architectures on several labelled sets, end to end.

>>> from edgessl.study import StudyConfig, run_study
>>> result = run_study(StudyConfig(variants="subnets.jsonl", supernet="RUN/last.ckpt",
...                                downstream=("digits", "fashion-mnist"), out="S"))

Each variant's accuracies are written to ``OUT/results/<variant>.json`` as soon as they are
known, so an interrupted study continues where it stopped (a finished variant is neither
trained nor evaluated again; a new downstream set only evaluates what is missing). The
settings that decide the numbers (weights, resolution, bank/test sizes, protocol) are kept in
``OUT/study.json``: a rerun with others is refused. Under torchrun the variants are dealt to
the ranks (every ``world``-th one), each trained and evaluated by one process; rank 0 waits
for all and writes the outputs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch.distributed as tdist

from edgessl.dist import DistEnv, resolve_device, shutdown
from edgessl.errors import BadInput
from edgessl.study import report
from edgessl.study.analysis import analyse, correlation, kendall_matrix
from edgessl.study.sets import (
    EvalSet,
    check_distinct,
    check_protocol,
    evaluate_on,
    metrics_of,
    prepare_sets,
    set_key,
)
from edgessl.study.variants import Variant, resolve_variants
from edgessl.study.weights import SupernetWeights, TrainedWeights
from edgessl.utils import FolderLock, atomic_write_text, remove_stale_temps

FORMAT = "edgessl-study/1"
RANK_TIMEOUT = timedelta(days=7)  # ranks wait for each other's variants, trained for hours


@dataclass
class StudyConfig:
    """Everything ``edgessl study`` takes (see docs/study.md)."""

    variants: str
    downstream: tuple[str, ...]
    out: str | Path = "results/study"
    supernet: str | None = None
    train: bool = False
    pretrain: str | None = None
    limit: int | None = None
    max_mflops: float | None = None
    resolution: int | None = None
    protocol: str = "both"
    metric: str | None = None  # the one the plots and the verdict use (default: linear)
    bank: int | None = 1000
    test: int | None = 1000
    bn_images: int = 500
    k: int = 20
    temperature: float = 0.07
    probe_iters: int = 300
    train_options: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"

    def check(self) -> None:
        """Refuse what cannot work, naming the option (nothing loaded yet)."""
        if (self.supernet is None) == (not self.train):
            raise BadInput("give --supernet CKPT (subnets with inherited weights) or --train "
                           "(SSL-train each variant on --pretrain), not both" if self.train
                           else "give --supernet CKPT (subnets with inherited weights) or "
                           "--train (SSL-train each variant on --pretrain DATA)")
        if self.train and not self.pretrain:
            raise BadInput("--train needs --pretrain DATA (the unlabelled training images)")
        if self.train_options and not self.train:
            raise BadInput("--train-opt applies to --train only")
        if not self.downstream:
            raise BadInput("--downstream needs at least one labelled set")
        check_distinct(list(self.downstream), "--downstream")
        check_protocol(self.protocol)
        if self.metric is not None and self.metric not in metrics_of(self.protocol):
            raise BadInput(f"--metric {self.metric!r} is not measured by --protocol "
                           f"{self.protocol}; choose {' or '.join(metrics_of(self.protocol))}")
        for name, value in (("--bank-size", self.bank), ("--test-size", self.test),
                            ("--bn-images", self.bn_images), ("--k", self.k),
                            ("--probe-iters", self.probe_iters)):
            if value is not None and value < 1:
                raise BadInput(f"{name} {value} must be at least 1")
        if self.resolution is not None and not 8 <= self.resolution <= 1024:
            raise BadInput(f"--resolution {self.resolution} must lie in 8..1024")
        if Path(self.out).exists() and not Path(self.out).is_dir():
            raise BadInput(f"--out {self.out} exists and is not a folder")

    @property
    def primary(self) -> str:
        return self.metric or metrics_of(self.protocol)[-1]


@dataclass
class StudyResult:
    rows: list[dict[str, Any]]
    correlations: dict[str, Any]
    winners: dict[str, Any]
    info: dict[str, Any]
    interrupted: bool = False


def _join_ranks() -> DistEnv:
    """This process's place under torchrun (gloo: only small objects travel, and ranks
    wait up to ``RANK_TIMEOUT`` for each other)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv()
    if not tdist.is_initialized():
        tdist.init_process_group("gloo", timeout=RANK_TIMEOUT)
    return DistEnv(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


class StudySession:
    """A validated, loaded study ready to run: every bad input is refused before anything
    is written (cheap checks first)."""

    def __init__(self, cfg: StudyConfig):
        cfg.check()
        self.cfg, self.out = cfg, Path(cfg.out)
        self.variants: list[Variant] = resolve_variants(cfg.variants, cfg.limit,
                                                        cfg.max_mflops)
        self.env = _join_ranks()
        self.device = resolve_device(cfg.device, self.env.local_rank)
        if cfg.train:
            self.weights = TrainedWeights(self.out / "runs", cfg.pretrain, cfg.train_options,
                                          cfg.resolution, str(self.device.type))
            self.resolution = self.weights.resolution
            pretrain = cfg.pretrain
        else:
            self.weights = SupernetWeights(cfg.supernet)
            self.resolution = cfg.resolution or self.weights.resolution
            pretrain = cfg.pretrain or self.weights.data
        self.weights.check(self.variants, cfg.variants)
        self.sets = prepare_sets(list(cfg.downstream), self.resolution, cfg.bank, cfg.test)
        self.pretrain = self._pretrain_set(pretrain)
        self.identity = {"format": FORMAT, "weights": self.weights.identity(),
                         "evaluation": self._evaluation()}
        self._check_identity()

    def _pretrain_set(self, source: str | None) -> EvalSet | None:
        """The pre-training set as an evaluation set; None when it has no labels (or, for a
        supernet's recorded data, cannot be found here)."""
        if source is None:
            return None
        for s in self.sets:
            if s.key == set_key(source):
                return s
        try:
            [s] = prepare_sets([source], self.resolution, self.cfg.bank, self.cfg.test,
                               "--pretrain")
        except BadInput:
            if self.cfg.pretrain is not None and not self.cfg.train:
                raise  # named by the user: its problem is theirs to see
            return None  # unlabelled pre-training images (or a supernet's absent folder)
        if s.label in {d.label for d in self.sets}:
            s.label = f"{s.label} (pre-training)"
        return s

    def _evaluation(self) -> dict[str, Any]:
        c = self.cfg
        return {"resolution": self.resolution, "bank": c.bank, "test": c.test,
                "bn_images": c.bn_images, "protocol": c.protocol, "k": c.k,
                "temperature": c.temperature, "probe_iters": c.probe_iters}

    def _check_identity(self) -> None:
        path = self.out / "study.json"
        if not path.is_file():
            return
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            raise BadInput(f"{path} is not a study file; choose another --out") from None
        for key in ("format", "weights", "evaluation"):
            if old.get(key) != self.identity[key]:
                raise BadInput(f"--out {self.out} holds a study with other {key} settings "
                               f"({json.dumps(old.get(key))[:160]}); choose another --out")

    @property
    def all_sets(self) -> list[EvalSet]:
        extra = [self.pretrain] if self.pretrain and self.pretrain not in self.sets else []
        return [*self.sets, *extra]

    # ---- per-variant records ----------------------------------------------------------------
    def _record_path(self, v: Variant) -> Path:
        return self.out / "results" / f"{v.slug}.json"

    def _load(self, v: Variant) -> dict[str, Any]:
        path = self._record_path(v)
        try:
            rec = json.loads(path.read_text()) if path.is_file() else None
        except ValueError:  # not written by a study (saves are atomic): evaluate again
            rec = None
        if isinstance(rec, dict) and rec.get("ref") == v.ref_text:
            return rec
        return {"variant": v.name, "ref": v.ref_text, "mflops": v.mflops, "params": v.params,
                "evals": {}}

    def _save(self, v: Variant, rec: dict[str, Any]) -> None:
        atomic_write_text(self._record_path(v), json.dumps(rec, indent=1) + "\n")

    def _missing(self, rec: dict[str, Any]) -> list[EvalSet]:
        wanted = set(metrics_of(self.cfg.protocol))
        wanted |= {"knn_halves"} if "knn" in wanted else set()
        return [s for s in self.all_sets
                if not wanted <= set(rec["evals"].get(s.key, {}))]

    def _evaluate(self, v: Variant, on_stage: Callable[[str, str], None]) -> None:
        """Train (or load) ``v`` and evaluate it on every set it lacks, saving as it goes."""
        rec = self._load(v)
        todo = self._missing(rec)
        if not todo:
            return
        if isinstance(self.weights, TrainedWeights) and rec.get("trained"):
            net = self.weights.load(v)
        else:
            on_stage(v.name, "train" if self.cfg.train else "extract")
            net, trained = self.weights.network(v, lambda p: on_stage(
                v.name, f"train step {p['step']}/{p['total']}"))
            if trained is not None:
                rec["trained"] = trained
                self._save(v, rec)
        for s in todo:
            on_stage(v.name, f"evaluate on {s.label}")
            c = self.cfg
            rec["evals"][s.key] = {"set": s.label, **evaluate_on(
                net, s, self.device, c.protocol, c.k, c.temperature, c.bn_images,
                c.probe_iters)}
            self._save(v, rec)

    # ---- the run ----------------------------------------------------------------------------
    def run(self, progress: Callable[[dict[str, Any]], None] | None = None) -> StudyResult:
        """Evaluate this rank's variants, then (rank 0) write every output. Ctrl-C stops at
        once, keeps what was evaluated and writes the outputs of the complete variants."""
        env, t0 = self.env, time.time()
        lock = FolderLock(self.out).acquire() if env.main else None
        try:
            if env.main:
                remove_stale_temps(self.out / "results")
                atomic_write_text(self.out / "study.json", json.dumps(
                    {**self.identity, "variants": self.cfg.variants,
                     "downstream": list(self.cfg.downstream),
                     "supernet": self.cfg.supernet, "pretrain": self.cfg.pretrain},
                    indent=1) + "\n")
            if env.active:
                tdist.barrier()
            mine = self.variants[env.rank::env.world]
            interrupted = False
            try:
                for n, v in enumerate(mine):
                    def stage(name: str, what: str, n: int = n) -> None:
                        if progress is not None:
                            progress({"done": n, "total": len(mine), "variant": name,
                                      "stage": what})
                    self._evaluate(v, stage)
                    if progress is not None:
                        progress({"done": n + 1, "total": len(mine), "variant": v.name,
                                  "stage": "done"})
            except KeyboardInterrupt:
                interrupted = True
            if env.active and not interrupted:
                tdist.barrier()
            result = self._outputs(time.time() - t0, interrupted) if env.main else None
        finally:
            if lock is not None:
                lock.release()
        if not interrupted:
            shutdown(env)
        return result

    def _outputs(self, seconds: float, interrupted: bool) -> StudyResult:
        """Gather every complete variant's record and write the six outputs."""
        metrics, primary = metrics_of(self.cfg.protocol), self.cfg.primary
        done = []
        for v in self.variants:
            rec = self._load(v)
            if not self._missing(rec):
                done.append((v, rec))
        labels = [s.label for s in self.sets]
        pre = self.pretrain
        rows = []
        for v, rec in done:
            row = {"variant": v.name, "ref": v.ref_text, "mflops": round(v.mflops, 3),
                   "mparams": round(v.params / 1e6, 4)}
            for m in metrics:
                if pre is not None:
                    row[f"pretrain_{m}"] = rec["evals"][pre.key][m]
                for s in self.sets:
                    row[f"{s.label}_{m}"] = rec["evals"][s.key][m]
            rows.append(row)
        columns = ["variant", "ref", "mflops", "mparams",
                   *[f"pretrain_{m}" for m in metrics if pre is not None],
                   *[f"{lab}_{m}" for m in metrics for lab in labels]]
        self.out.mkdir(parents=True, exist_ok=True)
        report.write_csv(self.out / "study.csv", rows, columns)
        names = [r["variant"] for r in rows]
        mflops = np.array([r["mflops"] for r in rows], dtype=float)
        acc = {m: {**({pre.label: np.array([r[f"pretrain_{m}"] for r in rows])}
                      if pre is not None else {}),
                   **{lab: np.array([r[f"{lab}_{m}"] for r in rows]) for lab in labels}}
               for m in metrics}
        info = self._info(len(rows), seconds, interrupted)
        if not rows:
            return StudyResult(rows, {}, {}, info, interrupted)
        halves = None
        if "knn" in metrics:
            halves = {s.label: np.array([rec["evals"][s.key]["knn_halves"] for _, rec in done])
                      for s in ([pre] if pre is not None and pre not in self.sets else [])
                      + self.sets}
        corr, wins = analyse(names, mflops, acc, pre.label if pre else None, labels, halves)
        for obj, name in ((corr, "correlations.json"), (wins, "winners.json")):
            report.write_json(self.out / name, {"primary": primary, **obj, "info": info})
        by_set = acc[primary]
        report.plot_heatmap(self.out / "heatmap.png", kendall_matrix(by_set, wins[primary]["sets"]),
                            f"Kendall's tau of {primary} accuracy over {len(rows)} variants")
        base = pre.label if pre is not None else labels[0]  # x axis: the pre-training set
        report.plot_scatter(self.out / "scatter.png", by_set[base],
                            {lab: by_set[lab] for lab in labels}, mflops, base, primary,
                            {lab: correlation(by_set[base], by_set[lab])["kendall"]
                             for lab in labels})
        mean = np.mean([by_set[lab] for lab in labels], axis=0)
        order = sorted(range(len(rows)), key=lambda i: (-mean[i], mflops[i], names[i]))[:5]
        top = [{"variant": names[i], "mflops": mflops[i], "mean": float(mean[i])} for i in order]
        report.write_report(self.out / "report.md", info, corr, wins, primary, top)
        return StudyResult(rows, corr, wins, info, interrupted)

    def _info(self, n: int, seconds: float, interrupted: bool) -> dict[str, Any]:
        c, w = self.cfg, self.weights
        if isinstance(w, SupernetWeights):
            weights = (f"inherited from the '{w.space}' supernet {w.path} (trained on "
                       f"{w.data}), BatchNorm re-estimated per set")
        else:
            t = w.config
            weights = (f"each trained standalone with SSL on {c.pretrain} "
                       f"({json.dumps({k: v for k, v in t.items() if k != 'data'})})")
        costs = [v.mflops for v in self.variants]
        return {"variants": c.variants, "n_variants": n, "n_requested": len(self.variants),
                "weights": weights, "mflops_range": f"{min(costs):.1f}-{max(costs):.1f}",
                "pretrain": self.pretrain.label if self.pretrain else None,
                "downstream": [s.label for s in self.sets],
                "sets": [s.describe() for s in self.all_sets],
                "evaluation": (f"{c.protocol} at {self.resolution} px; bank {c.bank} and test "
                               f"{c.test} images per set (at most), BatchNorm re-estimated on "
                               f"{c.bn_images} bank images; kNN k={c.k}; linear probe "
                               f"{c.probe_iters} L-BFGS iterations"),
                "seconds": round(seconds, 1), "world": self.env.world,
                "interrupted": interrupted}


def run_study(cfg: StudyConfig,
              progress: Callable[[dict[str, Any]], None] | None = None) -> StudyResult:
    """Validate, load, evaluate and write every output; see :class:`StudySession`."""
    return StudySession(cfg).run(progress)
