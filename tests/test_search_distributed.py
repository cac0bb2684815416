"""Search sharded over 2 gloo CPU processes under torchrun gives the single-process front."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from edgessl.checkpoint import TRAIN_FORMAT, save_checkpoint
from edgessl.spaces import get_space
from edgessl.supernet import Supernet


def test_two_rank_search_matches_one_process(tmp_path):
    torch.manual_seed(3)
    ckpt = tmp_path / "sn.ckpt"
    save_checkpoint(ckpt, {"format": TRAIN_FORMAT, "kind": "supernet", "space": "mobilenet",
                           "backbone": Supernet(get_space("mobilenet")).state_dict(),
                           "resolution": 32, "config": {"resolution": 32}})
    args = ["search", "--budget-mflops", "400", "--supernet", str(ckpt), "--population", "6",
            "--generations", "2", "--proxy-bank", "60", "--proxy-val", "30", "--device", "cpu",
            "--data", "digits",
            "--seed", "5", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "edgessl", *args, "--out", str(tmp_path / "one")],
                         env=env, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                          "--master-port", "29517", "-m", "edgessl", *args,
                          "--out", str(tmp_path / "two")],
                         env=env, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-2000:]
    front_one = json.loads((tmp_path / "one" / "pareto.json").read_text())
    front_two = json.loads((tmp_path / "two" / "pareto.json").read_text())
    assert front_one == front_two and len(front_one) >= 1
    assert (tmp_path / "one" / "best.arch.json").read_text() == \
        (tmp_path / "two" / "best.arch.json").read_text()
    outputs = [json.loads(line) for line in two.stdout.splitlines() if line.startswith("{")]
    assert len(outputs) == 1 and outputs[0]["evaluated"] == json.loads(one.stdout)["evaluated"]
