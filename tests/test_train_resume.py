"""A run killed with SIGKILL mid-epoch and resumed ends bit-identical to an uninterrupted run,
and its restart removes the temp files of killed saves."""

from __future__ import annotations

import csv
import signal
import subprocess
import time

import torch
from test_train_fixtures import TINY, edgessl_cmd, run_subprocess, subprocess_env

from edgessl.checkpoint import load_checkpoint
from edgessl.utils import TMP_SUFFIX

# 4 steps per epoch (64 images / 16), 2 epochs, a checkpoint every step, BYOL (EMA target too)
RUN = (*TINY, "--subset", "64", "--ssl", "byol", "--epochs", "2", "--ckpt-every", "1",
       "--seed", "3")


def _rows(path) -> int:
    try:
        with open(path) as f:
            return len(list(csv.DictReader(f)))
    except (FileNotFoundError, csv.Error):
        return 0


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_sigkill_then_resume_is_bit_exact(tmp_path):
    whole = run_subprocess("train", *RUN, "--out", tmp_path / "A")
    assert whole.returncode == 0, whole.stderr

    proc = subprocess.Popen(edgessl_cmd("train", *RUN, "--out", tmp_path / "B"),
                            env=subprocess_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while _rows(tmp_path / "B" / "metrics.csv") < 2 and time.time() < deadline:
        assert proc.poll() is None, "run ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(tmp_path / "B" / "last.ckpt")["step"]
    assert 1 <= killed_at < 8
    stale = tmp_path / "B" / f".last.ckpt.999999999.abcd{TMP_SUFFIX}"  # a save killed mid-write
    stale.write_bytes(b"\0" * 1000)

    resumed = run_subprocess("train", "--out", tmp_path / "B", "--resume", "--workers", "0")
    assert resumed.returncode == 0, resumed.stderr
    assert not list((tmp_path / "B").glob(f"*{TMP_SUFFIX}"))
    a = load_checkpoint(tmp_path / "A" / "last.ckpt")
    b = load_checkpoint(tmp_path / "B" / "last.ckpt")
    assert a["step"] == b["step"] == 8
    _assert_same(a["backbone"], b["backbone"])
    _assert_same(a["objective"], b["objective"])
    rows = list(csv.DictReader(open(tmp_path / "B" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, 9))
    first = list(csv.DictReader(open(tmp_path / "A" / "metrics.csv")))
    assert [r["loss"] for r in rows] == [r["loss"] for r in first]
