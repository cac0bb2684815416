"""Issue 17's refusals: each exits 2 with one line naming the bad value, no traceback, and
touches nothing already written."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import torch
from test_train_fixtures import TINY, subprocess_env, trained_run  # noqa: F401 - fixture

from edgessl.checkpoint import MODEL_FORMAT, TRAIN_FORMAT, load_network, save_checkpoint
from edgessl.data.loaders import SEED_SPACE, image_seed
from edgessl.errors import BadInput
from edgessl.spaces import get_space
from edgessl.supernet import Supernet


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESSL_CACHE", str(tmp_path / "cache"))


def one_line(r, *needles) -> None:
    assert r.code == 2, r
    assert r.err.startswith("error: ") and r.err.count("\n") == 1, r.err
    assert "Traceback" not in r.err
    for n in needles:
        assert str(n) in r.err, r.err


@pytest.mark.parametrize("args, needle", [
    (["--workers", "-1"], "--workers -1"),
    (["--weight-decay", "-1"], "--weight-decay -1.0"),
    (["--seed", str(2**64)], f"--seed {2**64}"),
    (["--seed", "-1"], "--seed -1"),
    (["--clip-grad", "-2"], "--clip-grad -2.0"),
    (["--max-steps", "0"], "--max-steps 0"),
])
def test_bad_train_options(cli, tmp_path, args, needle):
    one_line(cli("train", *TINY, *args, "--out", tmp_path / "R"), needle)
    assert not (tmp_path / "R").exists()


def test_seeds_torch_and_numpy_take_are_accepted(cli, tmp_path):
    """Seeds above ~1.8e6 used to overflow torch.manual_seed in the per-image seed
    (seed * 1e13 > 2**64); every derived seed is now reduced modulo 2**64."""
    assert image_seed(2**64 - 1, 3, 17) < SEED_SPACE
    torch.manual_seed(image_seed(2**64 - 1, 3, 17))
    r = cli("train", *TINY, "--seed", "10000000", "--max-steps", "1", "--out", tmp_path / "R")
    assert r.code == 0, r


def test_out_naming_a_file_is_refused_before_data_loads(cli, tmp_path):
    out = tmp_path / "afile"
    out.write_text("keep me")
    one_line(cli("train", "--data", tmp_path / "no-such-data", "--out", out), f"--out {out}")
    assert out.read_text() == "keep me"


@pytest.mark.parametrize("args, needle", [
    (["--bank-size", "0"], "--bank-size 0"),
    (["--test-size", "0"], "--test-size 0"),
    (["--k", "-1"], "--k -1"),
    (["--k", "0"], "--k 0"),
    (["--resolution", "0"], "--resolution 0"),
    (["--resolution", "5000"], "--resolution 5000"),
    (["--workers", "-3"], "--workers -3"),
    (["--probe", "newton"], "--probe 'newton'"),
])
def test_bad_eval_options(cli, trained_run, args, needle):  # noqa: F811
    one_line(cli("eval", trained_run / "last.ckpt", "--data", "digits", *args), needle)


def _without(payload: dict, key: str) -> dict:
    return {k: v for k, v in payload.items() if k != key}


@pytest.fixture(scope="module")
def payloads():
    net = Supernet(get_space("mobilenet"))
    arch = get_space("mobilenet").smallest()
    model = {"format": MODEL_FORMAT, "model": {"kind": "arch", "arch": arch.to_dict()},
             "state_dict": net.extract(arch).state_dict(), "meta": {}}
    train = {"format": TRAIN_FORMAT, "kind": "supernet", "space": "mobilenet",
             "backbone": net.state_dict(), "config": {"data": "digits", "out": "x"},
             "step": 1}
    return model, train


@pytest.mark.parametrize("fmt, key", [("model", "state_dict"), ("model", "model"),
                                      ("train", "backbone"), ("train", "space"),
                                      ("train", "kind")])
def test_checkpoint_missing_a_key_in_every_reader(cli, tmp_path, payloads, fmt, key):
    """eval (evaluate), search (search/proxy.py), export (deploy/sources.py) and the
    library's load_network all read through one schema check."""
    payload = _without(payloads[0] if fmt == "model" else payloads[1], key)
    path = tmp_path / "x.ckpt"
    save_checkpoint(path, payload)
    with pytest.raises(BadInput, match=f"'{key}'"):
        load_network(path)
    one_line(cli("eval", path, "--data", "digits"), f"'{key}'", path)
    if fmt == "train":
        one_line(cli("search", "--supernet", path, "--out", tmp_path / "S"), f"'{key}'")
    else:
        one_line(cli("export", path, "--out", tmp_path / "E"), f"'{key}'")
    assert not (tmp_path / "S").exists() and not (tmp_path / "E").exists()


@pytest.fixture
def run_copy(tmp_path, trained_run):  # noqa: F811
    run = tmp_path / "RUN"
    shutil.copytree(trained_run, run)
    return run


@pytest.mark.parametrize("key", ["optimizer", "rng", "objective", "config", "step"])
def test_resume_of_a_checkpoint_missing_a_key(cli, run_copy, key):
    """The resume path (train/loop.py, train/state.py) needs more than a network."""
    from edgessl.checkpoint import load_checkpoint

    ckpt = run_copy / "last.ckpt"
    save_checkpoint(ckpt, _without(load_checkpoint(ckpt), key))
    before = ckpt.read_bytes(), (run_copy / "metrics.csv").read_bytes()
    one_line(cli("train", "--out", run_copy, "--resume"), f"'{key}'")
    assert (ckpt.read_bytes(), (run_copy / "metrics.csv").read_bytes()) == before


@pytest.mark.parametrize("text, needle", [
    (b"step,loss\n1,0.5\nabc,0.4\n", "step 'abc'"),
    (b"loss,lr\n0.5,0.1\n", "no 'step' column"),
    (b"step,loss\n1,\xff\xfe0.5\n", "not a readable CSV"),
])
def test_hand_edited_metrics_csv_on_resume(cli, run_copy, text, needle):
    (run_copy / "metrics.csv").write_bytes(text)
    before = (run_copy / "last.ckpt").read_bytes(), (run_copy / "config.json").read_bytes()
    one_line(cli("train", "--out", run_copy, "--resume"), "metrics.csv", needle)
    assert (run_copy / "metrics.csv").read_bytes() == text
    assert ((run_copy / "last.ckpt").read_bytes(), (run_copy / "config.json").read_bytes()) \
        == before


def test_decompression_bomb_in_validation_images(cli, tmp_path, trained_run):  # noqa: F811
    from test_data_layouts import _bomb, imagenet_tree

    data = tmp_path / "DATA"
    imagenet_tree(data)
    _bomb(data / "val" / "cat" / "huge.jpg")
    one_line(cli("eval", trained_run / "last.ckpt", "--data", data, "--arch", "smallest"),
             "huge.jpg", "remove it")


def test_assets_module_without_arguments():
    r = subprocess.run([sys.executable, "-m", "edgessl.search.assets"], capture_output=True,
                       text=True, env=subprocess_env(), timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "required: src" in r.stderr
