"""BatchNorm re-estimation, feature extraction, kNN and linear-probe accuracy on frozen features.

Reused by the search (proxy accuracy of subnets) as well as ``edgessl eval``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

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
def extract_features(model: nn.Module, loader: Iterable,
                     device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, D) float32 on CPU, labels (N,)) of ``model`` in eval mode."""
    model.eval()
    feats, labels = [], []
    for x, y in loader:
        feats.append(model(x.to(device)).float().flatten(1).cpu())
        labels.append(torch.as_tensor(y))
    return torch.cat(feats), torch.cat(labels)


@torch.no_grad()
def knn_accuracy(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor,
                 test_y: torch.Tensor, k: int = 20, temperature: float = 0.07,
                 chunk: int = 1024) -> float:
    """Weighted kNN (Wu et al., 2018): cosine similarity, the k nearest vote with weight
    exp(sim / temperature). Returns accuracy in [0, 1]."""
    train_f = F.normalize(train_f.float(), dim=1)
    test_f = F.normalize(test_f.float(), dim=1)
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    k = min(k, len(train_f))
    correct = 0
    for start in range(0, len(test_f), chunk):
        sim = test_f[start:start + chunk] @ train_f.t()
        top, idx = sim.topk(k, dim=1)
        votes = torch.zeros(len(sim), n_classes)
        votes.scatter_add_(1, train_y[idx].long(), (top / temperature).exp())
        correct += int((votes.argmax(1) == test_y[start:start + chunk]).sum())
    return correct / len(test_f)


def linear_probe_accuracy(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor,
                          test_y: torch.Tensor, weight_decay: float = 1e-4,
                          max_iter: int = 300) -> float:
    """A logistic-regression probe on frozen, standardised features, fitted full-batch with
    L-BFGS (deterministic, no learning rate to tune). Returns test accuracy in [0, 1]."""
    mean, std = train_f.mean(0), train_f.std(0).clamp_min(1e-6)
    xtr, xte = (train_f - mean) / std, (test_f - mean) / std
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    g = torch.Generator().manual_seed(0)
    linear = nn.Linear(xtr.shape[1], n_classes)
    with torch.no_grad():
        linear.weight.normal_(0, 0.01, generator=g)
        linear.bias.zero_()
    opt = torch.optim.LBFGS(linear.parameters(), lr=1.0, max_iter=max_iter,
                            line_search_fn="strong_wolfe")
    ytr = train_y.long()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(linear(xtr), ytr) + weight_decay * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float((linear(xte).argmax(1) == test_y).float().mean())
