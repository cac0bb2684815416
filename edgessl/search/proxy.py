"""Proxy accuracy of a sub-network, scored with the supernet's inherited weights.

Each candidate is extracted from the supernet and its BatchNorm statistics are re-estimated on
a few fixed batches; then, when the data has labels, its score is the weighted kNN's mean vote
share for the true class (a continuous form of kNN accuracy: on a few hundred images it ranks
networks as test accuracy does about twice as well as accuracy itself, BENCHMARKS.md "Proxy
noise") on a held-out validation split carved from the *training* images (the test split is
never looked at); without labels, the score is the linear CKA between its embeddings and the
largest subnet's on the same images (agreement with the teacher, as in label-free NAS).

That screening score is cheap and noisy; the search re-scores its few best candidates with
:meth:`ProxyScorer.refine`, the same vote share leave-one-out over a larger pool of labelled
training images (every image a query against all the others), which ranks subnets as test
accuracy does far more faithfully (BENCHMARKS.md, "Proxy noise"). Scores are cached by Arch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from edgessl.arch import Arch
from edgessl.checkpoint import load_network
from edgessl.errors import BadInput
from edgessl.evaluate import knn_vote_share, recalibrate_bn
from edgessl.models import EdgeNet
from edgessl.supernet import Supernet


def load_supernet(path: str) -> tuple[Supernet, dict[str, Any]]:
    """A supernet from a training checkpoint (``edgessl train`` without a fixed arch)."""
    net = load_network(path, supernet=True)
    info = {"path": str(path), "space": net.space, "ssl": net.config.get("ssl"),
            "data": net.config.get("data"), "step": net.step, "resolution": net.resolution}
    return net.module, info


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear centred kernel alignment of two feature matrices over the same N images
    (Kornblith et al., 2019): 1 = same geometry up to rotation and scale; any widths."""
    x = x - x.mean(0, keepdim=True)
    y = y - y.mean(0, keepdim=True)
    xty = (x.T @ y).pow(2).sum()
    return float(xty / ((x.T @ x).pow(2).sum().sqrt() * (y.T @ y).pow(2).sum().sqrt() + 1e-12))


@dataclass
class ProxyData:
    """Preprocessed tensors for scoring: BN calibration batches, bank and validation split,
    and (labelled data only) the larger pool that :meth:`ProxyScorer.refine` scores on."""

    calib: list[torch.Tensor]
    bank_x: torch.Tensor
    bank_y: torch.Tensor | None
    val_x: torch.Tensor
    val_y: torch.Tensor | None
    pool_x: torch.Tensor | None = None
    pool_y: torch.Tensor | None = None

    @property
    def labelled(self) -> bool:
        return self.bank_y is not None


def prepare_proxy_data(data: str, resolution: int, bank: int = 500, val: int = 300,
                       calib_batches: int = 4, batch_size: int = 64, seed: int = 0,
                       use_labels: bool = True, val_data: str | None = None,
                       pool: int = 0) -> ProxyData:
    """Fixed tensors from the *train* split of ``data`` (``DATA/train`` of a train/val layout;
    all of ``data`` when ``val_data`` names its validation folder, which the search never
    reads): a kNN bank and a validation split held out of it, and with ``pool`` > 0 and
    labels, up to ``pool`` training images (those two included) for the refine step."""
    from edgessl.data import eval_tensors, open_dataset

    images = open_dataset(data, "train", val_data)
    n = len(images)
    if n < 20:
        raise BadInput(f"--data {data} has only {n} training images; search needs at least 20")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = min(val, n // 3)
    n_bank = min(bank, n - n_val)
    labelled = use_labels and images.labelled
    n_pool = max(min(pool, n), n_val + n_bank) if pool > 0 and labelled else n_val + n_bank
    x, y = eval_tensors(images.subset(perm[:n_pool]), resolution)
    vx, vy, bx, by = x[:n_val], y[:n_val], x[n_val:n_val + n_bank], y[n_val:n_val + n_bank]
    calib = list(bx[: calib_batches * batch_size].split(batch_size))
    if not labelled:
        return ProxyData(calib, bx, None, vx, None)
    return ProxyData(calib, bx, by, vx, vy, *((x, y) if pool > 0 else (None, None)))


class ProxyScorer:
    """Scores Archs with inherited supernet weights; results cached by Arch."""

    def __init__(self, supernet: Supernet, data: ProxyData, device: str | torch.device = "cpu",
                 k: int = 20, temperature: float = 0.07):
        self.supernet = supernet.to(device).eval()
        self.data = data
        self.device = torch.device(device)
        self.k, self.temperature = k, temperature
        self.cache: dict[Arch, float] = {}
        self.refined: dict[Arch, float] = {}
        self._teacher: torch.Tensor | None = None

    @property
    def kind(self) -> str:
        return "knn" if self.data.labelled else "cka"

    @property
    def pool_size(self) -> int:
        """Images :meth:`refine` scores on (0: no refine step: unlabelled data, or off)."""
        return 0 if self.data.pool_x is None else len(self.data.pool_x)

    def subnet(self, arch: Arch) -> EdgeNet:
        """The standalone subnet with inherited weights and re-estimated BN statistics."""
        net = self.supernet.extract(arch).to(self.device)
        return recalibrate_bn(net, self.data.calib, self.device)

    @torch.no_grad()
    def _features(self, net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([net(b.to(self.device)).float().cpu() for b in x.split(256)])

    def score(self, arch: Arch) -> float:
        if arch not in self.cache:
            net = self.subnet(arch)
            val = self._features(net, self.data.val_x)
            if self.data.labelled:
                bank = self._features(net, self.data.bank_x)
                s = knn_vote_share(bank, self.data.bank_y, val, self.data.val_y, self.k,
                                   self.temperature)
            else:
                if self._teacher is None:
                    space = self.supernet.space
                    teacher = self.subnet(space.largest(arch.resolution))
                    self._teacher = self._features(teacher, self.data.val_x)
                s = linear_cka(val, self._teacher)
            self.cache[arch] = float(s)
        return self.cache[arch]

    def refine(self, arch: Arch) -> float:
        """The careful score: kNN vote share of the true class, leave-one-out over the whole
        pool (N queries against an N - 1 bank instead of 300 against 500)."""
        if self.data.pool_x is None:
            raise ValueError("refine needs labelled proxy data prepared with pool > 0")
        if arch not in self.refined:
            f = self._features(self.subnet(arch), self.data.pool_x)
            self.refined[arch] = float(knn_vote_share(f, self.data.pool_y, f, self.data.pool_y,
                                                      self.k, self.temperature,
                                                      leave_one_out=True))
        return self.refined[arch]
