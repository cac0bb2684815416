"""``--preset smoke`` of the ranking-fidelity benchmark runs end to end through the CLI and
writes the keys the issue asks for; a killed run resumes without retraining what finished.
The headline's smoke is in test_benchmarks_smoke_headline.py: a file of its own, so the two run
on different workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edgessl.checkpoint import TRAIN_FORMAT, save_checkpoint
from edgessl.spaces import get_space
from edgessl.supernet import Supernet

ROOT = Path(__file__).resolve().parent.parent


def _random_supernet(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    save_checkpoint(path, {"format": TRAIN_FORMAT, "kind": "supernet", "space": "mobilenet",
                           "backbone": Supernet(get_space("mobilenet")).state_dict(),
                           "resolution": 32, "config": {"resolution": 32, "data": "digits"}})
    return path


@pytest.fixture(scope="module")
def supernet(tmp_path_factory) -> Path:
    """A random-init mobilenet supernet that records digits as its data (the smoke presets
    search and evaluate on digits)."""
    return _random_supernet(tmp_path_factory.mktemp("sn") / "sn.ckpt", 0)


def _run(script: str, *args, in_process: bool = False) -> subprocess.CompletedProcess:
    """``python benchmarks/SCRIPT ARGS``; ``in_process``: its edgessl commands run inside the
    script's process (same entry point, no interpreter start-up per command)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EDGESSL_BENCH_INPROCESS": str(int(in_process)),
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_ranking_smoke_writes_the_fidelity_keys_and_resumes(supernet, tmp_path):
    work = tmp_path / "ranking"
    r = _run("ranking.py", "--preset", "smoke", "--supernet", supernet, "--work", work,
             in_process=True)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((work / "ranking.json").read_text())
    for key in ("kendall_proxy", "spearman_proxy", "kendall_refined", "spearman_refined",
                "kendall_inherited", "spearman_inherited",
                "kendall_mflops", "spearman_mflops", "mean_gap_inherited_minus_standalone",
                "min_gain_over_random_init", "budget_images"):
        assert isinstance(result[key], float | int), key
    rows = result["subnets"]
    assert len(rows) == 3 and min(r["mflops"] for r in rows) == rows[0]["mflops"]  # smallest
    for row in rows:
        assert row["command"].startswith("edgessl train --arch ")
        assert {"proxy", "refined", "inherited_knn", "standalone_knn",
                "random_init_knn"} <= set(row)
    # acceptance 2: the recorded command, re-run with only --out changed, gives the same kNN
    # within 1.5 points, through subprocesses (the path real runs take), also where only the
    # results were kept (the arch file is re-made from the row)
    before = {p: p.stat().st_mtime_ns for p in work.glob("subnet*/last.ckpt")}
    (work / "subnet00.arch.json").unlink()
    r = _run("ranking.py", "--preset", "smoke", "--work", work, "--reproduce", "subnet00")
    assert r.returncode == 0, r.stderr[-2000:]
    bad = _run("ranking.py", "--preset", "smoke", "--work", work, "--reproduce", "subnet99")
    assert bad.returncode != 0 and "subnet99" in bad.stderr
    # another seed for the same subnet measures the reference's seed noise
    r = _run("ranking.py", "--preset", "smoke", "--work", work, "--reproduce", "subnet01",
             "--reseed", "1", in_process=True)
    assert r.returncode == 0, r.stderr[-2000:]
    for bad_args, named in ((["--reseed", "1"], "--reseed 1"),
                            (["--reproduce", "subnet00", "--reseed", "-1"], "--reseed -1")):
        bad = _run("ranking.py", "--preset", "smoke", "--work", work, *bad_args)
        assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
            bad.stderr.strip()] and named in bad.stderr, bad.stderr
    # a second invocation trains nothing again (every run is found finished) and reports the
    # re-run
    r = _run("ranking.py", "--preset", "smoke", "--supernet", supernet, "--work", work,
             in_process=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in work.glob("subnet*/last.ckpt")} == before
    again = json.loads((work / "ranking.json").read_text())
    assert again["subnets"] == rows
    rep, reseeded = again["reproductions"]
    assert rep["key"] == "subnet00" and rep["command"] == rows[0]["command"]
    assert reseeded["key"] == "subnet01" and " --seed 1 " in reseeded["rerun_command"]
    assert again["seed_noise"] == pytest.approx(abs(reseeded["difference"]))
    assert rep["rerun_command"] == (rows[0]["command"].rsplit(" --out ", 1)[0]
                                    + f" --out {work / 'repro-subnet00'}")
    assert abs(rep["rerun_knn"] - rows[0]["standalone_knn"]) <= 0.015
    # the cost counts every logged command, across invocations: the re-run's too
    assert again["command_hours"] > result["command_hours"]
    # --rescore: another supernet against the same references, nothing trained again
    other = _random_supernet(tmp_path / "other.ckpt", 1)
    r = _run("ranking.py", "--preset", "smoke", "--supernet", other, "--work", work,
             "--rescore", in_process=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in work.glob("subnet*/last.ckpt")} == before
    new = json.loads((work / "ranking.json").read_text())
    assert new["supernet"].endswith("other.ckpt")
    for a, b in zip(rows, new["subnets"], strict=True):
        assert (a["standalone_knn"], a["command"]) == (b["standalone_knn"], b["command"])
    assert [r["proxy"] for r in rows] != [r["proxy"] for r in new["subnets"]]



def test_search_vs_random_reports_percentile_and_both_spearmans(supernet, tmp_path):
    """search_vs_random.py end to end on digits with a tiny search: the per-seed line and the
    table carry the pick's percentile and Spearman for the refine and the screening score; a
    rerun with --resume reuses the finished seed (same table); a negative --refine is refused
    with one line."""
    common = ("--data", "digits", "--proxy-data", "digits", "--supernet", supernet,
              "--seeds", "0", "--population", "4", "--generations", "1", "--bank", "200",
              "--test", "100", "--no-write", "--work", tmp_path, "--n-random", "3")
    r = _run("search_vs_random.py", *common, "--refine", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "seed 0: pick beats" in r.stdout and "of 3 random subnets" in r.stdout
    assert "screening score alone" in r.stdout
    assert "leave-one-out over" in r.stdout and "among the 2 best by screening" in r.stdout
    median = next(line for line in r.stdout.splitlines() if line.startswith("| median |"))
    assert median.count("|") == 10  # percentile, both Spearmans, three picks' kNN
    again = _run("search_vs_random.py", *common, "--refine", "2", "--resume")
    assert again.returncode == 0 and "seed 0: reused from" in again.stdout
    assert median in again.stdout.splitlines()
    tiny = _run("search_vs_random.py", *common, "--budget", "1")
    assert tiny.returncode == 2 and tiny.stderr.startswith("error: --budget-mflops 1 is below")
    assert tiny.stderr.count("\n") == 1
    bad = _run("search_vs_random.py", *common, "--refine", "-1")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --refine -1 must be at least 0"
    # search_strategies.py re-runs that seed's search with other objectives, against it
    saved = json.loads((tmp_path / "seed0.json").read_text())
    ref = tmp_path / "reference.json"
    ref.write_text(json.dumps({"command": "smoke", "date": "today", "args": saved["settings"],
                               "runs": [saved["run"]]}))
    same = _run("search_strategies.py", "--reference", ref, "--objectives", "accuracy,mflops")
    assert same.returncode == 0, same.stderr[-2000:]
    assert "default +0.00" in same.stdout  # the same settings find the reference's pick
    single = _run("search_strategies.py", "--reference", ref, "--objectives", "accuracy")
    assert single.returncode == 0, single.stderr[-2000:]
    row = next(line for line in single.stdout.splitlines() if line.startswith("| 0 |"))
    assert row.count("|") == 8 and "minus each alternative" in single.stdout
    wider = _run("search_strategies.py", "--reference", ref, "--objectives", "accuracy,mflops",
                 "--population", "6")
    assert wider.returncode == 0 and "`--population 6`" in wider.stdout, wider.stderr[-2000:]
    assert "| 0 |" in wider.stdout and "minus each alternative" in wider.stdout
    small = _run("search_strategies.py", "--reference", ref, "--population", "2")
    assert small.returncode == 2
    assert small.stderr.strip() == "error: --population 2 must be at least 4"
    foo = _run("search_strategies.py", "--reference", ref, "--objectives", "foo")
    assert foo.returncode == 2 and foo.stderr.startswith("error: --objectives: unknown")
    assert foo.stderr.count("\n") == 1
    unknown = _run("search_strategies.py", "--reference", ref, "--seeds", "5")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "error: --seeds [5] not in the reference (it has [0])"


def test_remake_check_tells_a_faithful_remake_from_a_different_one(supernet, tmp_path):
    """remake_check.py slims the run as the README does and compares it with the reference:
    the same weights are REPRODUCED, another seed's are DIFFERENT, a missing run exits 2."""
    other = _random_supernet(tmp_path / "other.ckpt", 1)
    same = _run("remake_check.py", supernet, "--reference", supernet)
    assert same.returncode == 0 and "REPRODUCED" in same.stdout, same.stderr[-2000:]
    n = same.stdout.split("/")[0]
    assert same.stdout.startswith(f"{n}/{n} backbone tensors bit-identical, max |diff| 0;")
    diff = _run("remake_check.py", other, "--reference", supernet)
    assert diff.returncode == 0 and "DIFFERENT" in diff.stdout
    assert "(trained:" not in diff.stdout  # neither run folder records its CPU
    (other.parent / "config.json").write_text(json.dumps({"cpu_capability": "AVX512"}))
    hint = _run("remake_check.py", other, "--reference", supernet)
    assert "bit-identical re-runs need the same one (trained: run on AVX512)" in hint.stdout
    missing = _run("remake_check.py", tmp_path / "none.ckpt", "--reference", supernet)
    assert missing.returncode == 2 and missing.stderr.startswith("error: ")
    assert missing.stderr.count("\n") == 1
