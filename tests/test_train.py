"""``edgessl train``: SimCLR/BYOL/VICReg supernet runs, standalone runs, bad input, NaN handling."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from conftest import library_eval
from test_train_fixtures import TINY, run_inprocess, trained_run  # noqa: F401 - fixture

from edgessl.checkpoint import TRAIN_FORMAT, load_checkpoint
from edgessl.spaces import get_space


@pytest.mark.parametrize("ssl", ["simclr", "byol", "vicreg"])
def test_train_then_eval_on_digits(cli, tmp_path, ssl):
    run = tmp_path / "RUN"
    r = cli("train", *TINY, "--ssl", ssl, "--epochs", "1", "--out", run, "--json")
    assert r.code == 0, r
    summary = json.loads(r.out)
    assert summary["steps"] == 2 and summary["kind"] == "supernet"
    assert set(summary["losses"]) == {"loss_largest", "loss_smallest", "loss_sampled1"}
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2]
    parts = ("loss_largest", "loss_smallest", "loss_sampled1")
    for row in rows:  # the total is the sum of the subnets' losses, each one logged
        assert float(row["loss"]) == pytest.approx(sum(float(row[p]) for p in parts), rel=1e-4)
    payload = load_checkpoint(run / "last.ckpt", expect=TRAIN_FORMAT)
    assert payload["step"] == 2 and payload["config"]["ssl"] == ssl
    assert {"optimizer", "scheduler", "rng", "backbone", "objective"} <= set(payload)
    r = cli("eval", run / "last.ckpt", "--data", "digits", "--protocol", "both",
            "--bank-size", "200", "--test-size", "100", "--json")
    assert r.code == 0, r
    result = json.loads(r.out)
    expected = library_eval(run / "last.ckpt", "digits", "both", bank=200, test=100)
    assert (result["knn"], result["linear"]) == (expected["knn"], expected["linear"])
    assert (result["bank_size"], result["test_size"]) == (200, 100)


def test_local_crops_train_and_resume_keeps_them(cli, tmp_path):
    """``--local-crops`` (multi-crop BYOL): the run trains, its config records the crops, and
    a resume may not change them."""
    run = tmp_path / "L"
    r = cli("train", *TINY, "--ssl", "byol", "--local-crops", "2", "--local-resolution", "8",
            "--target-momentum", "0.9", "--max-steps", "1", "--out", run, "--json")
    assert r.code == 0, r
    assert json.loads(r.out)["steps"] == 1
    config = load_checkpoint(run / "last.ckpt", expect=TRAIN_FORMAT)["config"]
    assert (config["local_crops"], config["local_resolution"]) == (2, 8)
    assert config["target_momentum"] == 0.9
    _one_line(cli("train", "--out", run, "--resume", "--local-crops", "4"), "--local-crops 4")


def test_standalone_arch_training(cli, tmp_path):
    arch = tmp_path / "small.json"
    get_space("mobilenet").smallest().save(arch)
    r = cli("train", *TINY, "--arch", arch, "--max-steps", "1", "--out", tmp_path / "R",
            "--json")
    assert r.code == 0, r
    out = json.loads(r.out)
    assert out["kind"] == "standalone" and list(out["losses"]) == ["loss_ssl"]
    r = cli("eval", tmp_path / "R" / "last.ckpt", "--data", "digits", "--protocol", "knn",
            "--bank-size", "100", "--test-size", "50", "--json")
    assert r.code == 0 and json.loads(r.out)["kind"] == "standalone"


def _one_line(r, *needles):
    assert r.code == 2, r
    assert len(r.err.strip().splitlines()) == 1, r.err
    for n in needles:
        assert str(n) in r.err, r.err


def test_bad_inputs_exit_2_and_lose_nothing(cli, tmp_path, trained_run):  # noqa: F811
    ckpt = trained_run / "last.ckpt"
    before = ckpt.read_bytes()
    metrics = (trained_run / "metrics.csv").read_bytes()
    empty = tmp_path / "empty"
    empty.mkdir()
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "a.png").write_bytes(b"garbage")
    (corrupt / "b.jpg").write_bytes(b"")
    for data, needle in ((tmp_path / "nope", "nope"), (empty, "no images"),
                         (corrupt, "2 corrupt")):
        _one_line(cli("train", "--data", data, "--out", tmp_path / "X"), needle)
        assert not (tmp_path / "X").exists()
    _one_line(cli("train", *TINY, "--ssl", "swav", "--out", tmp_path / "Y"), "swav")
    _one_line(cli("train", *TINY, "--temperature", "0", "--out", tmp_path / "Y"),
              "--temperature 0")
    _one_line(cli("train", *TINY, "--min-scale", "1.5", "--out", tmp_path / "Y"),
              "--min-scale 1.5")
    _one_line(cli("train", *TINY, "--local-crops", "2", "--out", tmp_path / "Y"),
              "--local-crops 2", "vicreg")
    _one_line(cli("train", *TINY, "--ssl", "byol", "--local-crops", "-1", "--out",
                  tmp_path / "Y"), "--local-crops -1")
    _one_line(cli("train", *TINY, "--ssl", "byol", "--local-crops", "2", "--min-scale", "0.05",
                  "--out", tmp_path / "Y"), "--min-scale 0.05")
    _one_line(cli("train", *TINY, "--ssl", "byol", "--target-momentum", "1", "--out",
                  tmp_path / "Y"), "--target-momentum 1")
    _one_line(cli("train", *TINY, "--target-momentum", "0.9", "--out", tmp_path / "Y"),
              "--target-momentum 0.9", "vicreg")
    _one_line(cli("train", *TINY, "--precision", "fp16", "--out", tmp_path / "Y"),
              "--precision 'fp16'", "bf16")
    assert not (tmp_path / "Y").exists()
    # an existing run is never overwritten; a resume may not change the space
    _one_line(cli("train", *TINY, "--out", trained_run), "--resume")
    _one_line(cli("train", "--out", trained_run, "--resume", "--space", "resnet"), "resnet")
    broken = tmp_path / "B"
    broken.mkdir()
    (broken / "last.ckpt").write_bytes(before[: len(before) // 3])
    _one_line(cli("train", "--out", broken, "--resume"), "truncated")
    assert ckpt.read_bytes() == before
    assert (trained_run / "metrics.csv").read_bytes() == metrics


def test_cpu_bf16_trains_the_resnet18_supernet_under_autocast(cli, tmp_path):
    """``--precision bf16`` on the CPU: the same seeded run as fp32 gives slightly different,
    finite weights (the convolutions ran in bf16), and the config records it."""
    weights = {}
    for precision in ("fp32", "bf16"):
        run = tmp_path / precision
        r = cli("train", *TINY, "--space", "resnet18", "--ssl", "vicreg", "--epochs", "1",
                "--precision", precision, "--out", run)
        assert r.code == 0, r
        payload = load_checkpoint(run / "last.ckpt")
        assert payload["config"]["precision"] == precision
        weights[precision] = payload["backbone"]["pre.0.conv.conv.weight"]
    assert torch.isfinite(weights["bf16"]).all()
    diff = (weights["bf16"] - weights["fp32"]).abs().max().item()
    assert 0 < diff < 0.1 * weights["fp32"].abs().max().item()


def test_nan_loss_stops_and_keeps_last_good_checkpoint(cli, tmp_path):
    run = tmp_path / "N"
    r = cli("train", *TINY, "--space", "mobilenet", "--optimizer", "sgd", "--lr", "1e30",
            "--clip-grad", "0", "--epochs", "3", "--ckpt-every", "1", "--out", run)
    assert r.code == 1, r
    assert "loss became" in r.err and "last good checkpoint" in r.err
    payload = load_checkpoint(run / "last.ckpt")
    assert payload["step"] >= 1
    assert all(torch.isfinite(v).all() for v in payload["backbone"].values()
               if v.is_floating_point())


@pytest.mark.slow
def test_compile_trains_the_same_network(cli, tmp_path):
    """``--compile`` (torch.compile, inductor on CPU) follows the eager run's trajectory."""
    arch = tmp_path / "small.json"
    get_space("mobilenet").smallest().save(arch)
    weights = []
    for flag in ((), ("--compile",)):
        out = tmp_path / f"R{len(flag)}"
        r = cli("train", *TINY, "--arch", arch, "--max-steps", "2", "--out", out, "--json",
                *flag)
        assert r.code == 0, r
        weights.append(load_checkpoint(out / "last.ckpt")["backbone"])
    assert weights[1].keys() == weights[0].keys()
    for name, eager in weights[0].items():
        torch.testing.assert_close(weights[1][name], eager, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(("native", "expected"), [(8, 32), (28, 48), (32, 48), (64, 128),
                                                  (0, 128)])
def test_default_training_resolution_follows_the_image_size(native, expected):
    from edgessl.train import default_resolution

    assert default_resolution(native) == expected


def test_supernet_init_from_starts_from_that_supernet(cli, tmp_path, trained_run):  # noqa: F811
    """--init-from on a supernet run takes the backbone of a supernet of the same space (e.g.
    the shipped one, to continue it on new data or at another resolution); another space is
    refused with one line naming the file."""
    from edgessl.checkpoint import load_network
    from edgessl.train.model import build_ssl_model

    ckpt = trained_run / "last.ckpt"
    source = load_network(ckpt, supernet=True).module.state_dict()
    model, ref = build_ssl_model("mobilenet", None, "vicreg", init=str(ckpt))
    started = model.backbone.state_dict()
    assert ref is None and started.keys() == source.keys()
    assert all(torch.equal(started[k], source[k]) for k in source)
    fresh = build_ssl_model("mobilenet", None, "vicreg")[0].backbone.state_dict()
    assert any(not torch.equal(fresh[k], source[k]) for k in source)

    r = cli("train", *TINY, "--init-from", ckpt, "--max-steps", "1", "--out", tmp_path / "C",
            "--json")
    assert r.code == 0, r
    written = json.loads((tmp_path / "C" / "config.json").read_text())
    assert written["init_from"] == str(ckpt)
    assert written["cpu_capability"] == torch.backends.cpu.get_cpu_capability()  # remakes
    r = cli("train", *TINY, "--space", "resnet", "--init-from", ckpt, "--max-steps", "1",
            "--out", tmp_path / "D")
    _one_line(r, ckpt, "'mobilenet'", "'resnet'")
    assert not (tmp_path / "D" / "last.ckpt").exists()
