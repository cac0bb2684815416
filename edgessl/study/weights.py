"""Where a study's networks get their weights: a trained supernet, or SSL training each one.

- :class:`SupernetWeights`: every variant is a subnet of one supernet's space, cut out with its
  inherited weights (seconds each on a CPU; BatchNorm is re-estimated per evaluation set).
- :class:`TrainedWeights`: every variant is trained standalone with self-supervision by
  :func:`edgessl.train.train`, the code behind ``edgessl train``, in ``OUT/runs/<variant>``
  (the paper's protocol). A run killed midway continues from its last checkpoint
  (bit-exact, as ``edgessl train --resume``); a finished one is never trained again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from torch import nn

from edgessl.arch import Arch
from edgessl.baselines import FAMILIES
from edgessl.checkpoint import load_network
from edgessl.deploy.sources import sha256_file
from edgessl.errors import BadInput
from edgessl.study.variants import Variant
from edgessl.train import CKPT_NAME, TrainConfig, default_resolution, train

# what a study decides itself, so --train-opt may not set it
STUDY_OWNED = {"data", "out", "space", "arch", "init_from", "resolution", "device"}
# options that change how fast, not what, a run trains (not part of a study's identity)
NOT_IDENTITY = {"device", "workers", "compile", "log_every", "ckpt_every", "time_limit"}


class SupernetWeights:
    """Subnets of the supernet in a training checkpoint, with inherited weights."""

    kind = "supernet"

    def __init__(self, path: str):
        p = Path(path)
        if p.is_dir():
            raise BadInput(f"--supernet {path} is a folder; give its checkpoint file (e.g. "
                           "RUN/last.ckpt)")
        if not p.is_file():
            raise BadInput(f"--supernet checkpoint not found: {path}")
        net = load_network(path, supernet=True)
        self.path, self.supernet, self.space = p, net.module, net.space
        self.resolution = net.resolution or 32
        self.data = net.config.get("data")
        self.sha256 = sha256_file(p)

    def check(self, variants: list[Variant], spec: str) -> None:
        """Every variant must be a subnet of the supernet's space."""
        if spec in FAMILIES:
            raise BadInput(f"--variants {spec} is a handcrafted family: its networks are not "
                           f"subnets of the supernet ('{self.space}' space), so they need "
                           "--train; with --supernet give arch JSON lines (edgessl space "
                           f"sample --space {self.space} --n 120 > subnets.jsonl)")
        for v in variants:
            if not isinstance(v.ref, Arch) or v.ref.space != self.space:
                raise BadInput(f"--variants: {v.name} is not a subnet of the supernet's "
                               f"'{self.space}' space (handcrafted networks need --train)")

    def identity(self) -> dict[str, Any]:
        """What decides the weights: the checkpoint's content (not where it lies)."""
        return {"kind": self.kind, "sha256": self.sha256}

    def network(self, variant: Variant, on_step: Callable[[dict], None] | None = None
                ) -> tuple[nn.Module, dict | None]:
        """(the subnet with inherited weights, None: nothing was trained)."""
        return self.supernet.extract(variant.ref), None


@contextmanager
def _this_rank_alone() -> Iterator[None]:
    """Run :func:`train` on this process alone: under torchrun the study gives each rank its
    own variants, so each is trained by one process, without DDP (train reads the world from
    ``WORLD_SIZE``/``RANK``; ``LOCAL_RANK`` still picks this rank's GPU)."""
    saved = {k: os.environ.get(k) for k in ("WORLD_SIZE", "RANK")}
    os.environ.update(WORLD_SIZE="1", RANK="0")
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def train_options(given: dict[str, Any]) -> dict[str, Any]:
    """``given`` checked against :class:`TrainConfig` (unknown or study-owned keys refused)."""
    known = {f.name for f in fields(TrainConfig)}
    for key in given:
        if key not in known:
            raise BadInput(f"--train-opt {key}: not an edgessl train option; known: "
                           f"{', '.join(sorted(known - STUDY_OWNED))}")
        if key in STUDY_OWNED:
            raise BadInput(f"--train-opt {key}: set by the study itself (use the study's "
                           f"own option, e.g. --pretrain, --resolution, --device)")
    return dict(given)


class TrainedWeights:
    """Each variant trained standalone with SSL on ``pretrain`` in ``root/<variant>``."""

    kind = "train"

    def __init__(self, root: Path, pretrain: str, options: dict[str, Any],
                 resolution: int | None, device: str):
        from edgessl.data import open_dataset

        images = open_dataset(pretrain, "train")
        self.resolution = resolution or default_resolution(images.native_size)
        self.root = root
        self.config = {"data": pretrain, **train_options(options),
                       "resolution": self.resolution, "device": device}
        TrainConfig.from_dict({**self.config, "out": str(root)}).check()  # names bad options

    def check(self, variants: list[Variant], spec: str) -> None:
        """Any Arch, baseline or family member trains standalone."""

    def identity(self) -> dict[str, Any]:
        cfg = TrainConfig.from_dict({**self.config, "out": ""}).to_dict()
        return {"kind": self.kind, "train": {k: v for k, v in cfg.items()
                                             if k not in NOT_IDENTITY | {"out"}}}

    def run_dir(self, variant: Variant) -> Path:
        return self.root / variant.slug

    def network(self, variant: Variant, on_step: Callable[[dict], None] | None = None
                ) -> tuple[nn.Module, dict]:
        """(the trained network, what training reported): trains it from scratch, or
        continues the killed run in ``run_dir`` from its last checkpoint."""
        run = self.run_dir(variant)
        given = {**self.config, "out": str(run)}
        if isinstance(variant.ref, Arch):
            given["arch"] = variant.ref.to_dict()
        else:
            given["space"] = f"baseline:{variant.ref}"
        with _this_rank_alone():
            summary = train(given, resume=(run / CKPT_NAME).exists(), on_step=on_step)
        keep = ("steps", "total_steps", "epochs", "resolution", "final_loss", "seconds",
                "weights_digest")
        return self.load(variant), {k: summary.get(k) for k in keep}

    def load(self, variant: Variant) -> nn.Module:
        """The finished network of ``variant`` (its training checkpoint)."""
        return load_network(self.run_dir(variant) / CKPT_NAME).module
