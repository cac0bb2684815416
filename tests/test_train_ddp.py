"""Two CPU processes under torchrun (gloo): identical weights on both ranks; only rank 0
writes files."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

from test_train_fixtures import TINY, subprocess_env


def test_torchrun_two_ranks_gloo(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    # the README's form: torchrun -m edgessl (a pyenv shim from `which edgessl` is not Python)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", "-m", "edgessl", "train", *TINY, "--batch-size", "8", "--max-steps", "2",
           "--ckpt-every", "1", "--out", "RUN", "--json"]
    r = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=subprocess_env(),
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    summaries = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1  # rank 0 alone prints
    s = summaries[0]
    assert s["world_size"] == 2 and len(s["rank_digests"]) == 2
    assert s["rank_digests"][0] == s["rank_digests"][1]
    files = sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file())
    assert files == ["RUN/config.json", "RUN/last.ckpt", "RUN/metrics.csv"]
    rows = list(csv.DictReader(open(work / "RUN" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2]  # one writer, no duplicated rows
