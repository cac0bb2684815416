"""BatchNorm re-estimation, feature extraction, kNN and linear-probe accuracy on frozen features.

Reused by the search (proxy accuracy of subnets) as well as ``edgessl eval``. The linear probe
is exact on small banks (full-batch L-BFGS, deterministic) and, above ``EXACT_PROBE_MAX``
images, the same objective minimised by mini-batch Adam on the evaluation device, within a
point of the exact fit (BENCHMARKS.md, eval_scale).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from edgessl.errors import BadInput

EXACT_PROBE_MAX = 20_000  # bank images up to which ``probe="auto"`` fits with L-BFGS
PROBES = ("auto", "lbfgs", "sgd")
Progress = Callable[[int, int], None]  # (done, total)

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _inputs(batch) -> torch.Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable, device: torch.device | str = "cpu",
                   max_batches: int | None = None) -> nn.Module:
    """Re-estimate every BatchNorm's running statistics on ``batches`` (tensors or
    (x, y) pairs): reset, cumulative average (momentum None), forward in train mode under
    no_grad. Needed for a subnet cut from a supernet, whose shared statistics belong to no
    single subnet. Returns the model in eval mode."""
    bns = [m for m in model.modules() if isinstance(m, _BN)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for i, batch in enumerate(batches):
        if max_batches is not None and i >= max_batches:
            break
        model(_inputs(batch).to(device))
    for m, momentum in zip(bns, saved, strict=True):
        m.momentum = momentum
    return model.eval()


@torch.no_grad()
def extract_features(model: nn.Module, loader: Iterable, device: torch.device | str = "cpu",
                     progress: Progress | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, D) float32 on CPU, labels (N,)) of ``model`` in eval mode; ``progress``
    hears (batches done, batches)."""
    model.eval()
    feats, labels = [], []
    total = len(loader) if hasattr(loader, "__len__") else 0
    for i, (x, y) in enumerate(loader):
        feats.append(model(x.to(device, non_blocking=True)).float().flatten(1).cpu())
        labels.append(torch.as_tensor(y))
        if progress is not None:
            progress(i + 1, total)
    return torch.cat(feats), torch.cat(labels)


def _knn_votes(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor,
               test_y: torch.Tensor, k: int, temperature: float, chunk: int | None,
               leave_one_out: bool = False):
    """Yield (votes (n, classes), test labels) per chunk of test images: cosine similarity,
    the k nearest vote with weight exp(sim / temperature), on ``train_f``'s device. With
    ``leave_one_out`` the test images *are* the bank (same rows) and none is its own
    neighbour."""
    if k < 1:
        raise BadInput(f"--k {k} must be at least 1")
    if leave_one_out and len(train_f) != len(test_f):
        raise ValueError("leave_one_out needs the same images as bank and queries")
    chunk = chunk or max(1, min(1024, 2**28 // max(1, len(train_f))))
    device = train_f.device
    train_f = F.normalize(train_f.float(), dim=1)
    test_f = F.normalize(test_f.float().to(device), dim=1)
    train_y, test_y = train_y.to(device).long(), test_y.to(device).long()
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    k = min(k, len(train_f) - int(leave_one_out))
    for start in range(0, len(test_f), chunk):
        sim = test_f[start:start + chunk] @ train_f.t()
        if leave_one_out:  # below any cosine: never its own neighbour
            rows = torch.arange(len(sim), device=device)
            sim[rows, rows + start] = -2.0
        top, idx = sim.topk(k, dim=1)
        votes = torch.zeros(len(sim), n_classes, device=device)
        votes.scatter_add_(1, train_y[idx], (top / temperature).exp())
        yield votes, test_y[start:start + chunk]


@torch.no_grad()
def knn_accuracy(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor,
                 test_y: torch.Tensor, k: int = 20, temperature: float = 0.07,
                 chunk: int | None = None, leave_one_out: bool = False) -> float:
    """Weighted kNN (Wu et al., 2018): cosine similarity, the k nearest vote with weight
    exp(sim / temperature), computed on ``train_f``'s device, ``chunk`` test images at a time
    (default: a similarity block of at most 2**28 entries, 1 GB). Returns accuracy in [0, 1].
    ``leave_one_out``: as in :func:`knn_vote_share`."""
    correct = sum(int((v.argmax(1) == y).sum())
                  for v, y in _knn_votes(train_f, train_y, test_f, test_y, k, temperature, chunk,
                                         leave_one_out))
    return correct / len(test_f)


@torch.no_grad()
def knn_vote_share(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor,
                   test_y: torch.Tensor, k: int = 20, temperature: float = 0.07,
                   chunk: int | None = None, leave_one_out: bool = False) -> float:
    """The same weighted kNN's mean share of the vote that goes to the true class, in [0, 1]:
    a continuous version of its accuracy. Used to *rank* networks on a few hundred images,
    where accuracy moves in steps of 1/N and most of its differences are sampling noise
    (BENCHMARKS.md, "Proxy noise": Spearman with test accuracy 0.22 -> 0.55).
    ``leave_one_out``: ``test_*`` are ``train_*`` and each image is scored against the others,
    so N labelled images give N queries and an N - 1 bank."""
    total = sum(float((v.gather(1, y[:, None]).squeeze(1) / v.sum(1)).sum())
                for v, y in _knn_votes(train_f, train_y, test_f, test_y, k, temperature, chunk,
                                       leave_one_out))
    return total / len(test_f)


def _probe_setup(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor,
                 test_y: torch.Tensor, device: torch.device | str):
    """Standardised features (train statistics) and a small-init linear layer on ``device``."""
    train_f, test_f = train_f.to(device).float(), test_f.to(device).float()
    mean, std = train_f.mean(0), train_f.std(0).clamp_min(1e-6)
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    g = torch.Generator().manual_seed(0)
    linear = nn.Linear(train_f.shape[1], n_classes)
    with torch.no_grad():
        linear.weight.normal_(0, 0.01, generator=g)
        linear.bias.zero_()
    return ((train_f - mean) / std, train_y.to(device).long(), (test_f - mean) / std,
            test_y.to(device), linear.to(device))


def _whitening(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """``P = (C + eps * mean eigenvalue)^(-1/2)`` for the covariance C of ``x``: the probe is
    fitted in coordinates ``x P`` with weights ``V`` (``W = V P``, the same objective and
    optimum), where the loss is well conditioned; backbone features are nearly low-rank, so
    in the original coordinates L-BFGS stops short and mini-batch steps crawl."""
    e, u = torch.linalg.eigh(x.T @ x / len(x))
    return (u * (e.clamp_min(0) + eps * e.mean().clamp_min(1e-12)).rsqrt()) @ u.T


def linear_probe_accuracy(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor,
                          test_y: torch.Tensor, weight_decay: float = 1e-4,
                          max_iter: int = 300, method: str = "lbfgs",
                          device: torch.device | str = "cpu",
                          progress: Progress | None = None) -> float:
    """A logistic-regression probe on frozen, standardised features, minimising
    cross-entropy + ``weight_decay`` * |W|^2 (whitened coordinates, the same optimum):
    ``lbfgs`` fits it full-batch (deterministic, no learning rate to tune), ``sgd`` by
    mini-batches on ``device`` (any bank size), ``auto`` picks lbfgs up to
    ``EXACT_PROBE_MAX`` images. Returns test accuracy in [0, 1]."""
    if method not in PROBES:
        raise BadInput(f"unknown --probe {method!r}; known: {', '.join(PROBES)}")
    if method == "auto":
        method = "lbfgs" if len(train_f) <= EXACT_PROBE_MAX else "sgd"
    xtr, ytr, xte, yte, linear = _probe_setup(train_f, train_y, test_f, test_y, device)
    p = _whitening(xtr)
    xtr, xte = xtr @ p, xte @ p

    def penalty() -> torch.Tensor:
        return weight_decay * (linear.weight @ p).pow(2).sum()

    if method == "sgd":
        _fit_minibatch(linear, xtr, ytr, penalty, progress=progress)
    else:
        opt = torch.optim.LBFGS(linear.parameters(), lr=1.0, max_iter=max_iter,
                                line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = F.cross_entropy(linear(xtr), ytr) + penalty()
            loss.backward()
            return loss

        opt.step(closure)
    with torch.no_grad():
        return float((linear(xte).argmax(1) == yte).float().mean())


def _fit_minibatch(linear: nn.Linear, x: torch.Tensor, y: torch.Tensor,
                   penalty: Callable[[], torch.Tensor], epochs: int | None = None,
                   batch_size: int = 1024, lr: float = 0.03,
                   progress: Progress | None = None) -> None:
    """Minimise the probe's objective with Adam on mini-batches (seeded order), the rate
    decaying on a cosine to zero, so the last steps settle at the full-batch optimum."""
    n = len(x)
    per_epoch = math.ceil(n / batch_size)
    if epochs is None:  # at least 4,000 steps and 10 epochs
        epochs = max(10, math.ceil(4000 / per_epoch))
    steps = epochs * per_epoch
    opt = torch.optim.Adam(linear.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    g = torch.Generator().manual_seed(0)
    for epoch in range(epochs):
        order = torch.randperm(n, generator=g).to(x.device)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            loss = F.cross_entropy(linear(x[idx]), y[idx]) + penalty()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if progress is not None:
            progress(epoch + 1, epochs)
