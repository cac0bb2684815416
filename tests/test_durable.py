"""Durable writes: fsync before and after the rename, a SIGKILL at any moment of a save keeps
the previous checkpoint loadable and the next start removes its temp file, and a second
process on the same --out is refused while the first runs (and not after it died)."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import stat
import subprocess
import time

import pytest
import torch
from test_train_fixtures import TINY, edgessl_cmd, subprocess_env

from edgessl.checkpoint import MODEL_FORMAT, load_checkpoint, save_checkpoint
from edgessl.utils import TMP_SUFFIX, FolderLock, atomic_write_text, remove_stale_temps


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESSL_CACHE", str(tmp_path / "cache"))


def _payload(n: int) -> dict:
    g = torch.Generator().manual_seed(n)
    return {"format": MODEL_FORMAT, "model": {"kind": "baseline", "name": "resnet18"},
            "state_dict": {"w": torch.randn(2_000_000, generator=g)}, "meta": {"n": n}}


def _save_forever(path: str, start: int) -> None:
    n = start
    while True:
        n += 1
        save_checkpoint(path, _payload(n))


def test_sigkill_during_saves_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "last.ckpt"
    save_checkpoint(path, _payload(0))
    rng = random.Random(0)
    fork = multiprocessing.get_context("fork")
    last, killed_mid_save = 0, 0
    for trial in range(25):
        proc = fork.Process(target=_save_forever, args=(str(path), 1000 * (trial + 1)))
        proc.start()
        time.sleep(rng.uniform(0.01, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        payload = load_checkpoint(path)  # never half a file
        n = payload["meta"]["n"]
        assert n == 0 or n > last, (n, last)  # the newest complete save, or the initial one
        assert torch.equal(payload["state_dict"]["w"], _payload(n)["state_dict"]["w"])
        last = max(last, n)
        temps = list(tmp_path.glob(f"*{TMP_SUFFIX}"))
        killed_mid_save += bool(temps)
        assert remove_stale_temps(tmp_path) == temps  # what the next start does
        assert not list(tmp_path.glob(f"*{TMP_SUFFIX}"))
    assert killed_mid_save >= 5  # the kills did land inside saves


def test_fsync_file_then_rename_then_fsync_folder(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(
        "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"), real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("rename"),
                                                     real_replace(a, b)))
    atomic_write_text(tmp_path / "x.txt", "hello")
    assert events == ["file", "rename", "dir"]
    assert (tmp_path / "x.txt").read_text() == "hello"


def test_stale_temps_of_live_writers_are_kept(tmp_path):
    mine = tmp_path / f".a.{os.getpid()}.x{TMP_SUFFIX}"
    dead = tmp_path / f".a.999999999.x{TMP_SUFFIX}"  # above any pid_max: not alive
    parent = tmp_path / f".a.{os.getppid()}.x{TMP_SUFFIX}"  # alive, another process
    for p in (mine, dead, parent):
        p.write_text("partial")
    assert remove_stale_temps(tmp_path) == [dead]
    assert remove_stale_temps(tmp_path, owner=True) == [parent]  # the lock holder's view
    assert mine.exists()


def test_second_run_on_the_same_out_is_refused(tmp_path, cli):
    out = tmp_path / "X"
    first = subprocess.Popen(edgessl_cmd("train", *TINY, "--epochs", "1000", "--out", out),
                             env={**subprocess_env(), "EDGESSL_CACHE": str(tmp_path / "cache")},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not (out / "last.ckpt").exists():
            assert first.poll() is None, first.stderr.read()
            assert time.time() < deadline
            time.sleep(0.05)
        before = sorted(p.name for p in out.iterdir())
        r = cli("train", *TINY, "--out", out)
        assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r
        assert f"in use by another edgessl process (pid {first.pid})" in r.err
        r = cli("train", "--out", out, "--resume")
        assert r.code == 2 and f"pid {first.pid}" in r.err
        assert sorted(p.name for p in out.iterdir()) == before
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    with FolderLock(out):  # a killed holder does not keep the lock
        pass
