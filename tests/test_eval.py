"""Evaluation: kNN, linear probe, BN re-estimation, and the ``eval`` command."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import library_eval
from test_train_fixtures import trained_run  # noqa: F401 - fixture

from edgessl.checkpoint import save_model
from edgessl.evaluate import knn_accuracy, knn_vote_share, linear_probe_accuracy, recalibrate_bn
from edgessl.spaces import get_space
from edgessl.supernet import Supernet


def _clusters(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    centres = torch.eye(4, 8) * 5
    return centres[y] + 0.3 * torch.randn(n, 8, generator=g), y


def test_knn_and_linear_on_separable_clusters():
    (xtr, ytr), (xte, yte) = _clusters(40, 0), _clusters(20, 1)
    assert knn_accuracy(xtr, ytr, xte, yte, k=5) == 1.0
    assert linear_probe_accuracy(xtr, ytr, xte, yte) == 1.0
    assert knn_accuracy(xtr, ytr[torch.randperm(40)], xte, yte, k=1) < 1.0


def test_knn_weights_votes_by_similarity():
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    query = torch.tensor([[1.0, 0.05]])
    # plain majority of 3 would say 1; similarity-weighted votes say 0
    assert knn_accuracy(train, labels, query, torch.tensor([0]), k=3, temperature=0.07) == 1.0


def test_knn_vote_share_sees_confidence_that_accuracy_cannot():
    """The search's proxy: the true class's share of the weighted vote. With a quarter of the
    bank's labels flipped to one wrong class, the majority still wins (accuracy stays 1.0)
    but the share drops to about 0.75; and the exact share for a hand-made vote."""
    (xtr, ytr), (xte, yte) = _clusters(400, 0), _clusters(40, 1)
    assert knn_vote_share(xtr, ytr, xte, yte, k=20, temperature=1.0) > 0.99
    noisy = ytr.clone()
    flip = (torch.arange(400) // 4) % 4 == 0  # every 4th image of each class -> the next
    noisy[flip] = (noisy[flip] + 1) % 4
    assert knn_accuracy(xtr, noisy, xte, yte, k=20, temperature=1.0) == 1.0
    share = knn_vote_share(xtr, noisy, xte, yte, k=20, temperature=1.0)
    assert 0.6 < share < 0.9
    train = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    got = knn_vote_share(train, torch.tensor([0, 0, 1]), torch.tensor([[1.0, 0.0]]),
                         torch.tensor([0]), k=3, temperature=1.0)
    e = torch.tensor(1.0).exp()
    assert got == pytest.approx(float(2 * e / (2 * e + 1)), rel=1e-5)


def test_knn_vote_share_leave_one_out_never_counts_the_query_itself():
    """Scoring a labelled set against itself: without leave-one-out every image is its own
    nearest neighbour and scores 1; with it, each is judged by its nearest *other* image.
    Hand-made points (cosines p0-p1 0.8, p1-p3 0.96, p2-p3 0.8): p0 -> p1 right, p1 -> p3
    wrong, p2 -> p3 right, p3 -> p1 wrong, so exactly 0.5, in any chunking."""
    f = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
    y = torch.tensor([0, 0, 1, 1])
    assert knn_vote_share(f, y, f, y, k=1) == pytest.approx(1.0)
    for chunk in (None, 1, 3):
        got = knn_vote_share(f, y, f, y, k=1, chunk=chunk, leave_one_out=True)
        assert got == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same images"):
        knn_vote_share(f, y, f[:3], y[:3], leave_one_out=True)


def test_recalibrate_bn_estimates_data_statistics():
    net = torch.nn.Sequential(torch.nn.BatchNorm1d(3))
    data = [torch.randn(50, 3) * 2 + 7 for _ in range(4)]
    recalibrate_bn(net, data)
    allx = torch.cat(data)
    assert torch.allclose(net[0].running_mean, allx.mean(0), atol=1e-4)
    assert not net.training and net[0].momentum == 0.1


def test_eval_cli_on_supernet_checkpoint(cli, trained_run):  # noqa: F811
    ckpt = trained_run / "last.ckpt"
    r = cli("eval", ckpt, "--data", "digits", "--arch", "smallest", "--protocol", "both",
            "--bank-size", "300", "--test-size", "100", "--json")
    assert r.code == 0, r
    out = json.loads(r.out)
    expected = library_eval(ckpt, "digits", "both", "smallest", bank=300, test=100)
    assert (out["knn"], out["linear"], out["resolution"]) == (expected["knn"],
                                                             expected["linear"], 16)
    r = cli("eval", ckpt, "--data", "digits", "--init", "random", "--protocol", "knn",
            "--bank-size", "300", "--test-size", "100", "--json")
    assert r.code == 0 and "linear" not in json.loads(r.out)


def test_eval_cli_on_standalone_model(cli, tmp_path):
    arch = get_space("mobilenet").smallest()
    net = Supernet(get_space("mobilenet")).extract(arch)
    save_model(tmp_path / "m.ckpt", arch, net, {"train_resolution": 16})
    r = cli("eval", tmp_path / "m.ckpt", "--data", "digits", "--protocol", "knn",
            "--bank-size", "200", "--test-size", "50", "--json")
    assert r.code == 0, r
    assert json.loads(r.out)["kind"] == "model"


def test_eval_refuses_bad_checkpoints(cli, tmp_path, trained_run):  # noqa: F811
    ckpt = trained_run / "last.ckpt"
    other = tmp_path / "resnet.json"
    get_space("resnet").smallest().save(other)
    r = cli("eval", ckpt, "--data", "digits", "--arch", other)
    assert r.code == 2 and "resnet" in r.err and len(r.err.strip().splitlines()) == 1
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(ckpt.read_bytes()[:5000])
    r = cli("eval", broken, "--data", "digits")
    assert r.code == 2 and "truncated" in r.err and len(r.err.strip().splitlines()) == 1
    r = cli("eval", ckpt, "--data", "digits", "--protocol", "svm")
    assert r.code == 2 and "svm" in r.err


def _overlapping(n: int, seed: int, classes: int = 10, dim: int = 32):
    """Gaussian classes that overlap (an exact probe scores well below 100%)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=torch.Generator().manual_seed(99))
    y = torch.arange(n) % classes
    return centres[y] + 2.0 * torch.randn(n, dim, generator=g), y


def test_minibatch_probe_reaches_the_exact_probe():
    """The SGD path minimises the same objective as full-batch L-BFGS: within a point."""
    (xtr, ytr), (xte, yte) = _overlapping(6000, 0), _overlapping(3000, 1)
    exact = linear_probe_accuracy(xtr, ytr, xte, yte, method="lbfgs")
    epochs = []
    sgd = linear_probe_accuracy(xtr, ytr, xte, yte, method="sgd",
                                progress=lambda done, total: epochs.append((done, total)))
    assert 0.5 < exact < 0.97 and abs(sgd - exact) <= 0.01, (sgd, exact)
    assert epochs[-1][0] == epochs[-1][1] == len(epochs)  # progress per epoch
    # ``auto`` is exact up to EXACT_PROBE_MAX bank images, mini-batch above
    import edgessl.evaluate.metrics as m

    calls = []
    assert linear_probe_accuracy(xtr, ytr, xte, yte, method="auto",
                                 progress=lambda *a: calls.append(a)) == exact and not calls
    m.EXACT_PROBE_MAX, saved = 1000, m.EXACT_PROBE_MAX
    try:
        linear_probe_accuracy(xtr, ytr, xte, yte, method="auto",
                              progress=lambda *a: calls.append(a))
    finally:
        m.EXACT_PROBE_MAX = saved
    assert calls


def test_eval_states_bounded_sizes_and_totals(cli, trained_run, monkeypatch):  # noqa: F811
    import edgessl.evaluate as ev

    monkeypatch.setattr(ev, "BANK_SIZE", 300)  # the default bound, made small
    r = cli("eval", trained_run / "last.ckpt", "--data", "digits", "--protocol", "knn",
            "--test-size", "100", "--json")
    assert r.code == 0, r
    out = json.loads(r.out)
    assert (out["bank_size"], out["bank_total"], out["test_size"], out["test_total"]) == \
        (300, 1438, 100, 359)
    r = cli("eval", trained_run / "last.ckpt", "--data", "digits", "--protocol", "knn",
            "--bank-size", "5000", "--test-size", "100")
    assert r.code == 0 and "1438 of 1438" in r.out and "100 of 359" in r.out
