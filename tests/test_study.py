"""edgessl study (inherited and trained weights, resume, torchrun), its analysis, bad input,
and the per-scenario search (edgessl search --data A --data B --data C)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats

from edgessl.arch import Arch
from edgessl.checkpoint import TRAIN_FORMAT, load_network, save_checkpoint
from edgessl.errors import BadInput
from edgessl.search.scenarios import CROSS_BANK, CROSS_TEST
from edgessl.spaces import get_space
from edgessl.study import prepare_sets, resolve_variants
from edgessl.study.analysis import correlation, winners
from edgessl.study.sets import evaluate_on
from edgessl.supernet import Supernet

ROOT = Path(__file__).resolve().parents[1]


def _folder(root: Path, seed: int, classes: int = 3, train: int = 16, test: int = 8) -> Path:
    """A tiny labelled set in the split layout (train/ + test/, a folder per class): noise
    with a class-dependent bright band, so features can tell the classes apart."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", train), ("test", test)):
        for c in range(classes):
            d = root / split / f"class{c}"
            d.mkdir(parents=True)
            for i in range(n):
                img = (rng.random((16, 16, 3)) * 90).astype(np.uint8)
                row = (c * (seed + 3)) % 11
                img[row:row + 5] += 150
                Image.fromarray(img).save(d / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> list[Path]:
    base = tmp_path_factory.mktemp("sets")
    return [_folder(base / name, seed) for name, seed in (("alpha", 1), ("beta", 2),
                                                         ("gamma", 4))]


@pytest.fixture(scope="module")
def supernet_ckpt(tmp_path_factory) -> Path:
    """A resnet18-space supernet in the training format (random weights: the study's
    mechanics do not depend on training; 512-wide features keep the probe fast)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sn") / "last.ckpt"
    save_checkpoint(path, {"format": TRAIN_FORMAT, "kind": "supernet", "space": "resnet18",
                           "backbone": Supernet(get_space("resnet18")).state_dict(),
                           "resolution": 32,
                           "config": {"ssl": "simclr", "data": "digits", "resolution": 32}})
    return path


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _one_line_error(r, *needles: str) -> None:
    assert r.code == 2, r
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err, r.err
    for n in needles:
        assert n in r.err, r.err


# ---- analysis ----------------------------------------------------------------------------------
def test_correlations_and_winners_on_known_rankings():
    pre = np.array([0.5, 0.6, 0.7, 0.8])
    acc = {"pre": pre, "same": pre ** 3, "reverse": 1 - pre, "flat": np.full(4, 0.3)}
    assert correlation(pre, acc["same"])["kendall"] == 1.0
    assert correlation(pre, acc["same"])["pearson"] < 1.0  # monotone, not linear
    assert correlation(pre, acc["reverse"])["spearman"] == -1.0
    assert correlation(pre, acc["flat"])["kendall"] is None  # undefined, not NaN
    assert correlation(pre[:2], acc["same"][:2])["pearson"] is None
    names, mflops = ["a", "b", "c", "d"], np.array([10.0, 20, 30, 40])
    w = winners(names, mflops, acc, ["pre", "reverse", "flat"])
    assert w["per_set"]["pre"]["winner"] == "d" and w["per_set"]["reverse"]["winner"] == "a"
    assert w["per_set"]["flat"]["winner"] == "a"  # a tie goes to fewer MFLOPs
    assert w["per_set"]["pre"]["rank_on"] == {"pre": 1, "reverse": 4, "flat": 1}
    assert w["per_set"]["pre"]["shortfall_on"]["reverse"] == pytest.approx(0.3)
    assert w["wins_everywhere"] == [] and w["distinct_winners"] == ["a", "d"]
    assert winners(names, mflops, acc, ["pre", "same"])["wins_everywhere"] == ["d"]


def test_variants_spread_filter_and_files(tmp_path):
    picked = resolve_variants("resnet-basic", limit=5)
    every = sorted(resolve_variants("resnet-basic"), key=lambda v: (v.mflops, v.name))
    assert [v.name for v in picked][0] == every[0].name and picked[-1].name == every[-1].name
    assert [v.mflops for v in picked] == sorted(v.mflops for v in picked) and len(picked) == 5
    assert all(v.mflops <= 2000 for v in resolve_variants("resnet", max_mflops=2000))
    arch = get_space("resnet18").sample(np.random.default_rng(0), 128)
    f = tmp_path / "v.txt"
    f.write_text(f"# mixed\nresnet18\n\n{arch.to_json()}\nmbv2-w1-n1.2.3.4.3.3.1\n")
    refs = [v.ref for v in resolve_variants(str(f))]
    assert refs == ["resnet18", arch, "mbv2-w1.0-n1.2.3.4.3.3.1"]
    f.write_text("resnet18\nresnet18\n")
    with pytest.raises(BadInput, match="line 2 repeats line 1"):
        resolve_variants(str(f))


# ---- bad input ---------------------------------------------------------------------------------
def test_bad_input_exits_2_with_one_line(cli, tmp_path, sets, supernet_ckpt):
    a = str(sets[0])
    train = ["study", "--train", "--pretrain", "digits", "--out", str(tmp_path / "o")]
    _one_line_error(cli(*train, "--variants", "resnet99", "--downstream", a), "resnet99")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    _one_line_error(cli(*train, "--variants", str(empty), "--downstream", a), "lists no")
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(12):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8) + i).save(flat / f"{i}.png")
    _one_line_error(cli(*train, "--variants", "resnet", "--downstream", f"{a},{flat}"),
                    "flat", "no labels")
    _one_line_error(cli(*train, "--variants", "resnet", "--downstream", f"{a},digits,{a}"),
                    "twice")
    respelled = str(sets[0].parent / "." / sets[0].name)
    _one_line_error(cli(*train, "--variants", "resnet", "--downstream", f"{a},{respelled}"),
                    "twice")
    _one_line_error(cli("study", "--supernet", str(supernet_ckpt), "--variants", "resnet",
                        "--downstream", a, "--out", str(tmp_path / "o")), "--train")
    _one_line_error(cli("study", "--variants", "resnet", "--downstream", a), "--supernet")
    _one_line_error(cli("study", "--train", "--variants", "resnet", "--downstream", a),
                    "--pretrain")
    assert not (tmp_path / "o").exists()


def test_list_shows_both_families(cli):
    r = cli("study", "--list", "--json")
    assert r.code == 0, r
    rows = {f["family"]: f for f in json.loads(r.out)["families"]}
    assert rows["resnet"]["members"] == 409 and rows["mbv2"]["members"] == 1215
    assert rows["resnet-basic"]["min_mflops"] == pytest.approx(1814.07, abs=0.01)


# ---- inherited weights -------------------------------------------------------------------------
def test_supernet_study_outputs_resume_and_new_sets(cli, tmp_path, sets, supernet_ckpt):
    space = get_space("resnet18")
    rng = np.random.default_rng(3)
    archs = [space.sample(rng, 224) for _ in range(4)]
    variants = tmp_path / "subnets.jsonl"
    variants.write_text("".join(a.to_json() + "\n" for a in archs))
    a, b, c = map(str, sets)
    out = tmp_path / "S"
    args = ["study", "--supernet", str(supernet_ckpt), "--variants", str(variants),
            "--bank-size", "30", "--test-size", "15", "--bn-images", "30", "--probe-iters",
            "30", "--device", "cpu", "--out", str(out), "--json"]
    r = cli(*args, "--downstream", f"{a},{b}")
    assert r.code == 0, r
    for name in ("study.csv", "correlations.json", "winners.json", "report.md"):
        assert (out / name).stat().st_size > 0
    for name in ("heatmap.png", "scatter.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    rows = _rows(out / "study.csv")
    assert list(rows[0]) == ["variant", "ref", "mflops", "mparams", "pretrain_knn",
                             "pretrain_linear", "alpha_knn", "beta_knn", "alpha_linear",
                             "beta_linear"]
    assert [Arch.from_json(r["ref"]) for r in rows] == archs
    # each number is the subnet's own evaluation (inherited weights, BN re-estimated)
    sn = load_network(supernet_ckpt, supernet=True).module
    [alpha] = prepare_sets([a], 32, 30, 15)
    for row, arch in zip(rows, archs, strict=True):
        direct = evaluate_on(sn.extract(arch), alpha, "cpu", "both", bn_images=30,
                             probe_iters=30)
        assert float(row["alpha_knn"]) == direct["knn"]
        assert float(row["alpha_linear"]) == direct["linear"]
    corr = json.loads((out / "correlations.json").read_text())
    tau = stats.kendalltau([float(r["pretrain_linear"]) for r in rows],
                           [float(r["beta_linear"]) for r in rows])[0]
    got = corr["linear"]["vs_pretrain"]["beta"]["kendall"]
    assert (got is None and np.isnan(tau)) or got == pytest.approx(tau, abs=1e-6)
    m = corr["knn"]["kendall_matrix"]
    assert m["sets"] == ["alpha", "beta"] and m["tau"][0][0] == 1 and m["tau"][0][1] == \
        m["tau"][1][0]
    wins = json.loads((out / "winners.json").read_text())["linear"]["per_set"]
    best = max(rows, key=lambda r: (float(r["alpha_linear"]), -float(r["mflops"])))
    assert wins["alpha"]["winner"] == best["variant"] and set(wins) == {"digits", "alpha",
                                                                         "beta"}
    # a rerun evaluates nothing again; a new set is evaluated alone
    results = sorted((out / "results").glob("*.json"))
    stamps = [p.stat().st_mtime_ns for p in results]
    assert cli(*args, "--downstream", f"{a},{b}").code == 0
    assert [p.stat().st_mtime_ns for p in results] == stamps
    before = [json.loads(p.read_text())["evals"] for p in results]
    assert cli(*args, "--downstream", f"{a},{b},{c}").code == 0
    after = [json.loads(p.read_text())["evals"] for p in results]
    for old, new in zip(before, after, strict=True):
        assert {k: new[k] for k in old} == old and len(new) == len(old) + 1
    assert "gamma_linear" in _rows(out / "study.csv")[0]
    _one_line_error(cli(*args[:-3], "--bank-size", "31", "--out", str(out), "--downstream", a),
                    "other evaluation settings")


# ---- trained weights: resume after SIGKILL, torchrun -------------------------------------------
def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _train_args(sets: list[Path]) -> list[str]:
    return ["study", "--train", "--pretrain", "digits", "--variants", "resnet",
            "--max-mflops", "1300", "--limit", "2", "--downstream", f"{sets[0]},{sets[1]}",
            "--resolution", "16", "--max-steps", "4", "--batch-size", "8", "--train-opt",
            "subset=48", "--protocol", "knn", "--bank-size", "40", "--test-size", "20",
            "--bn-images", "40", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained_study(tmp_path_factory, sets) -> Path:
    """The reference: one process, start to end, on one thread like each torchrun rank (the
    thread count changes float sums, and a 20-image kNN can flip on that)."""
    from test_train_fixtures import run_inprocess

    out = tmp_path_factory.mktemp("ts") / "one"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code, _, err = run_inprocess(*_train_args(sets), "--out", out)
    finally:
        torch.set_num_threads(threads)
    assert code == 0, err
    return out


def test_train_study_trains_each_member_and_evaluates_it(trained_study, sets):
    names = [v.name for v in resolve_variants("resnet", limit=2, max_mflops=1300)]
    rows = _rows(trained_study / "study.csv")
    assert [r["variant"] for r in rows] == names and len(set(names)) == 2
    [alpha] = prepare_sets([str(sets[0])], 16, 40, 20)
    for row in rows:
        run = trained_study / "runs" / row["variant"]
        lines = (run / "metrics.csv").read_text().splitlines()
        assert [int(x.split(",")[0]) for x in lines[1:]] == [1, 2, 3, 4]
        net = load_network(run / "last.ckpt")
        assert net.ref == row["variant"]  # the checkpoint names the family member
        direct = evaluate_on(net.module, alpha, "cpu", "knn", bn_images=40)
        assert float(row["alpha_knn"]) == direct["knn"]


def test_train_study_resumes_after_sigkill_without_retraining(tmp_path, trained_study, sets):
    first, second = [v.name for v in resolve_variants("resnet", limit=2, max_mflops=1300)]
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "edgessl", *_train_args(sets), "--train-opt", "ckpt_every=2",
           "--out", str(out)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    ckpt2 = out / "runs" / second / "last.ckpt"
    deadline = time.time() + 300
    while not ckpt2.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt2.exists(), proc.stderr.read()[-2000:]
    assert not (out / "results" / f"{second}.json").exists()  # killed mid-training
    done = out / "runs" / first
    kept = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in done.iterdir()}
    from test_train_fixtures import run_inprocess

    code, _, err = run_inprocess(*cmd[3:])
    assert code == 0, err
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in done.iterdir()} == kept
    steps = [int(x.split(",")[0]) for x in
             (out / "runs" / second / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == [1, 2, 3, 4]
    assert (out / "study.csv").read_text() == (trained_study / "study.csv").read_text()


def test_train_study_under_torchrun_matches_one_process(tmp_path, trained_study, sets):
    out = tmp_path / "two"
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                        "--master-port", "29533", "-m", "edgessl", *_train_args(sets),
                        "--out", str(out), "--json"], env=_env(), capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    # the same members, costs and weights' training; accuracies on the 20 test images may
    # differ by one image (float sums in another process order can flip a kNN vote)
    two, one = _rows(out / "study.csv"), _rows(trained_study / "study.csv")
    assert [list(r) for r in two] == [list(r) for r in one]
    for a, b in zip(two, one, strict=True):
        for key, value in a.items():
            try:
                assert abs(float(value) - float(b[key])) <= 1 / 20 + 1e-9, (key, value, b[key])
            except ValueError:
                assert value == b[key], key
    assert len([line for line in r.stdout.splitlines() if line.startswith("{")]) == 1
    for run in (out / "runs").iterdir():  # each member trained once, by one rank
        assert len((run / "metrics.csv").read_text().splitlines()) == 5


# ---- per-scenario search -----------------------------------------------------------------------
def test_search_per_scenario_writes_folders_and_the_cross_matrix(cli, tmp_path, sets,
                                                                 supernet_ckpt):
    out = tmp_path / "per-set"
    args = ["search", "--supernet", str(supernet_ckpt), "--budget-mflops", "600",
            "--population", "4", "--generations", "1", "--proxy-bank", "24", "--proxy-val",
            "12", "--device", "cpu", "--out", str(out), "--json"]
    r = cli(*args, *[x for s in sets for x in ("--data", str(s))])
    assert r.code == 0, r
    labels = ["alpha", "beta", "gamma"]
    picks = []
    for label in labels:
        assert {"best.arch.json", "best.ckpt", "pareto.csv", "report.md"} <= {
            p.name for p in (out / label).iterdir()}
        picks.append(Arch.load(out / label / "best.arch.json"))
    rows = _rows(out / "cross.csv")
    assert [r["searched_on"] for r in rows] == labels
    assert list(rows[0]) == ["searched_on", "mflops", "arch", *labels]
    assert (out / "cross.png").read_bytes()[:4] == b"\x89PNG"
    sn = load_network(supernet_ckpt, supernet=True).module
    targets = prepare_sets([str(s) for s in sets], 32, CROSS_BANK, CROSS_TEST)
    for row, arch in zip(rows, picks, strict=True):
        assert row["arch"] == str(arch)
        for label, target in zip(labels, targets, strict=True):
            assert float(row[label]) == evaluate_on(sn.extract(arch), target, "cpu",
                                                    "knn")["knn"]
    cross = json.loads((out / "cross.json").read_text())
    assert np.array(cross["linear"]).shape == (3, 3)
    _one_line_error(cli(*args, "--data", str(sets[0]), "--data", str(sets[0])), "twice")
    _one_line_error(cli(*args, "--data", str(sets[0]), "--data", str(sets[1]), "--val-data",
                        str(sets[2])), "--val-data")
