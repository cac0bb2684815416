"""Search: constraints before building, NSGA-II outputs, latency budget, Ctrl-C, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import library_eval
from test_train_fixtures import trained_run  # noqa: F401 - fixture

from edgessl.arch import Arch
from edgessl.checkpoint import TRAIN_FORMAT, load_model, save_checkpoint
from edgessl.cost.latency import LatencyTable
from edgessl.errors import BadInput
from edgessl.search import Budget, Constraints, SearchConfig, run_search
from edgessl.spaces import get_space
from edgessl.supernet import Supernet

TINY = ["--population", "6", "--generations", "2", "--proxy-bank", "60", "--proxy-val", "30",
        "--refine", "3", "--refine-images", "200", "--device", "cpu"]


@pytest.fixture(scope="module")
def supernet_ckpt(tmp_path_factory):
    """A mobilenet supernet checkpoint in the training format (random weights: the search
    mechanics do not depend on training; test_e2e uses a really trained one)."""
    torch.manual_seed(0)
    net = Supernet(get_space("mobilenet"))
    path = tmp_path_factory.mktemp("sn") / "last.ckpt"
    save_checkpoint(path, {"format": TRAIN_FORMAT, "kind": "supernet", "space": "mobilenet",
                           "backbone": net.state_dict(), "resolution": 32,
                           "config": {"ssl": "simclr", "data": "digits", "resolution": 32}})
    return path


def synthetic_table(space_name: str, resolution: int, path) -> LatencyTable:
    """A latency table whose entries are proportional to MACs (not a measurement: it tests
    the constraint logic; real tables come from edgessl profile)."""
    space = get_space(space_name)
    entries = {}
    for w in space.width_mults:
        pre, post = space.fixed_specs(resolution, w)
        specs = [*pre, *post]
        for i, dmax in enumerate(space.max_depths):
            for j in range(dmax):
                specs += [space.block(resolution, w, i, j, k, e)
                          for k in space.kernels for e in space.expands]
        for s in specs:
            entries[s.key] = {"median_ms": s.cost()[0] * 1e-8 + 0.01, "p10_ms": 0, "p90_ms": 0,
                              "count": 1}
    table = LatencyTable.from_dict({"format": "edgessl-latency/1", "space": space_name,
                                    "backend": "onnxruntime-cpu", "threads": 1, "batch": 1,
                                    "dtype": "fp32", "resolutions": [resolution],
                                    "entries": entries})
    table.save(path)
    return LatencyTable.load(path)


def test_constraints_vectorised_match_per_arch_and_sampling_is_feasible():
    space = get_space("mobilenet")
    cons = Constraints(space, Budget(max_mflops=300, max_mparams=5.0), 192)
    genes = cons.sample_feasible(500, np.random.default_rng(0))
    assert genes.shape == (500, len(space.gene_sizes())) and cons.feasible(genes).all()
    for g in genes[:50]:
        arch = space.decode(g)
        macs, params = space.cost(arch)
        assert arch.resolution == 192 and macs <= 300e6 and params <= 5e6
    tight = Constraints(space, Budget(max_mflops=92), 192)  # smallest at 192: 89.8 MFLOPs
    assert tight.feasible(tight.sample_feasible(20, np.random.default_rng(1))).all()


def test_impossible_budget_names_smallest_achievable():
    space = get_space("mobilenet")
    with pytest.raises(BadInput, match=r"--budget-mflops 100 is below .* 121\.28 MFLOPs"):
        Constraints(space, Budget(max_mflops=100), 224).check_achievable()
    with pytest.raises(BadInput, match="--latency-ms needs --latency-table"):
        Constraints(space, Budget(max_latency_ms=3), 224)


def test_search_writes_every_output_within_budget(cli, supernet_ckpt, tmp_path):
    out = tmp_path / "s"
    r = cli("search", "--budget-mflops", "300", "--supernet", supernet_ckpt, *TINY,
            "--out", out, "--json")
    assert r.code == 0, r
    summary = json.loads(r.out)
    for name in ("best.arch.json", "best.ckpt", "pareto.json", "pareto.csv", "pareto.png",
                 "candidates.csv", "report.md"):
        assert (out / name).stat().st_size > 0, name
    best = Arch.load(out / "best.arch.json")
    exact = json.loads(cli("cost", out / "best.arch.json", "--exact", "--json").out)
    assert exact["fvcore_mflops"] <= 300 and best.resolution == 224
    assert summary["best"]["arch"] == best.to_dict()
    front = json.loads((out / "pareto.json").read_text())
    scores = [(p["score"], p["mflops"]) for p in front]
    for s, m in scores:  # nobody on the front is dominated by another member
        assert not any(s2 >= s and m2 <= m and (s2, m2) != (s, m) for s2, m2 in scores)
    rows = list(csv.DictReader(open(out / "candidates.csv")))
    assert len(rows) == summary["evaluated"] and all(float(x["mflops"]) <= 300 for x in rows)
    model, ref, meta = load_model(out / "best.ckpt")
    assert ref == best and meta["proxy"] == "knn"
    assert model(torch.randn(2, 3, 32, 32)).shape[0] == 2
    r = cli("eval", out / "best.ckpt", "--data", "digits", "--protocol", "knn", "--json")
    assert r.code == 0, r
    assert json.loads(r.out)["knn"] == library_eval(out / "best.ckpt", "digits")["knn"]
    assert not (out / "pareto").exists() and "checkpoint" not in front[0]


def test_refine_rescores_the_top_candidates_and_picks_by_the_refined_score(supernet_ckpt,
                                                                            tmp_path):
    """--refine K: exactly the K best by screening score get a refined score (leave-one-out
    kNN over the pool of *training* images, recomputed here independently), the pick is the
    best of them by that score, and candidates.csv / the report say so."""
    from edgessl.search.proxy import ProxyScorer, load_supernet, prepare_proxy_data

    cfg = SearchConfig(out=tmp_path / "r", max_mflops=300, supernet=str(supernet_ckpt),
                       data="digits", population=6, generations=2, bank=60, val=30, refine=3,
                       refine_images=150, device="cpu", held_out=False)
    result = run_search(cfg)
    by_screen = sorted(result.candidates, key=lambda c: (-c.score, c.mflops))
    assert [c.refined is not None for c in by_screen] == [True] * 3 + [False] * (len(by_screen) - 3)
    top = by_screen[:3]
    assert result.best == max(top, key=lambda c: (c.refined, -c.mflops))
    data = prepare_proxy_data("digits", 32, bank=60, val=30, pool=150)
    assert len(data.pool_x) == 150 and data.pool_y is not None
    fresh = ProxyScorer(load_supernet(str(supernet_ckpt))[0], data)
    for c in top:
        assert fresh.refine(c.arch) == pytest.approx(c.refined, abs=1e-6)
        assert fresh.score(c.arch) == pytest.approx(c.score, abs=1e-6)
    rows = list(csv.DictReader(open(tmp_path / "r" / "candidates.csv")))
    assert sum(bool(r["refined"]) for r in rows) == 3
    report = (tmp_path / "r" / "report.md").read_text()
    assert "the 3 best candidates by screening score re-scored" in report
    assert f"refined {result.best.refined:.4f}" in report
    assert result.info["refine"] == {"top": 3, "images": 150}
    off = run_search(SearchConfig(**{**cfg.__dict__, "out": tmp_path / "o", "refine": 0}))
    assert off.best == max(off.candidates, key=lambda c: (c.score, -c.mflops))
    assert off.info["refine"] is None and all(c.refined is None for c in off.candidates)


def test_save_pareto_writes_every_member_as_best_ckpt_is_written(cli, supernet_ckpt, tmp_path):
    """--save-pareto: pareto/NN.ckpt per member in pareto.json's order, each loading as its own
    arch; the member that is the pick holds exactly best.ckpt's weights."""
    out = tmp_path / "s"
    (out / "pareto").mkdir(parents=True)
    (out / "pareto" / "97.ckpt").write_text("an earlier run's larger front")  # must go
    (out / "pareto" / "notes.txt").write_text("the user's")  # not ours: must stay
    r = cli("search", "--budget-mflops", "300", "--supernet", supernet_ckpt, *TINY,
            "--save-pareto", "--refine", "0", "--out", out, "--json")  # pick on the front
    assert r.code == 0, r
    front = json.loads((out / "pareto.json").read_text())
    assert [m["checkpoint"] for m in front] == [f"pareto/{i:02d}.ckpt" for i in range(len(front))]
    assert sorted(p.name for p in (out / "pareto").iterdir()) == \
        [Path(m["checkpoint"]).name for m in front] + ["notes.txt"]
    best_model, best, _ = load_model(out / "best.ckpt")
    picked = 0
    for m in front:
        model, ref, meta = load_model(out / m["checkpoint"])
        assert ref.to_dict() == m["arch"] and meta["score"] == pytest.approx(m["score"])
        if ref == best:
            picked += 1
            a, b = model.state_dict(), best_model.state_dict()
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert picked == 1
    assert "pareto/NN.ckpt" in (out / "report.md").read_text()


def test_latency_budget_holds_for_every_pareto_member(supernet_ckpt, tmp_path):
    table = synthetic_table("mobilenet", 128, tmp_path / "t.json")
    cfg = SearchConfig(out=tmp_path / "lat", max_mflops=None, max_latency_ms=2.0,
                       latency_table=str(tmp_path / "t.json"), supernet=str(supernet_ckpt),
                       objectives=("accuracy", "latency"), population=6, generations=2,
                       resolution=128, bank=60, val=30, device="cpu")
    result = run_search(cfg)
    assert result.pareto and result.best is not None
    for c in result.pareto:
        assert c.latency_ms <= 2.0
        assert c.latency_ms == pytest.approx(table.predict(c.arch))
    assert (tmp_path / "lat" / "pareto.png").exists()


@pytest.mark.parametrize("args, names", [
    (["--budget-mflops", "50"], "121.28 MFLOPs"),
    (["--budget-mflops", "-3"], "--budget-mflops -3"),
    (["--latency-ms", "4"], "--latency-table"),
    (["--objectives", "accuracy,beauty"], "'beauty'"),
    (["--supernet", "/no/such.ckpt"], "/no/such.ckpt"),
    (["--resolution", "100"], "--resolution 100"),
    (["--latency-table", "/no/table.json"], "/no/table.json"),
])
def test_bad_search_input_exits_2(cli, args, names, tmp_path, supernet_ckpt):
    if "--supernet" not in args:
        args = [*args, "--supernet", str(supernet_ckpt)]
    r = cli("search", *args, "--out", tmp_path / "o")
    assert r.code == 2 and names in r.err and len(r.err.strip().splitlines()) == 1, r
    assert not (tmp_path / "o").exists()


def test_search_refuses_standalone_checkpoint(cli, tmp_path):
    path = tmp_path / "x.ckpt"
    save_checkpoint(path, {"format": TRAIN_FORMAT, "kind": "standalone", "space": None,
                           "backbone": {}})
    r = cli("search", "--supernet", path, "--out", tmp_path / "o")
    assert r.code == 2 and "not a supernet" in r.err


@pytest.mark.parametrize("args, names", [
    (["--seed", "-1"], "--seed -1"),
    (["--generations", "0"], "--generations 0"),
    (["--population", "2"], "--population 2"),
    (["--proxy-bank", "0"], "--proxy-bank 0"),
    (["--proxy-val", "-5"], "--proxy-val -5"),
    (["--refine", "-1"], "--refine -1"),
    (["--refine-images", "5"], "--refine-images 5"),
    (["--proxy-resolution", "0"], "--proxy-resolution 0"),
    (["--proxy-resolution", "-1"], "--proxy-resolution -1"),
    (["--supernet", "{tmp}"], "is a folder"),
    (["--supernet", "{junk}"], "junk.ckpt is truncated or not a checkpoint"),
    (["--out", "{file}"], "afile exists and is not a folder"),
])
def test_more_bad_search_input_exits_2_before_work(cli, args, names, tmp_path, supernet_ckpt):
    (tmp_path / "junk.ckpt").write_text("a text file, not a checkpoint")
    (tmp_path / "afile").write_text("x")
    subs = {"{tmp}": str(tmp_path), "{junk}": str(tmp_path / "junk.ckpt"),
            "{file}": str(tmp_path / "afile")}
    args = [subs.get(a, a) for a in args]
    base = [] if "--supernet" in args else ["--supernet", str(supernet_ckpt)]
    out = [] if "--out" in args else ["--out", str(tmp_path / "o")]
    r = cli("search", *args, *base, *out)
    assert r.code == 2 and names in r.err, r
    assert r.err.startswith("error: ") and r.err.count("\n") == 1 and r.out == "", r
    assert not (tmp_path / "o").exists()


def test_shipped_default_supernet_loads_and_slimming_keeps_scores(tmp_path, supernet_ckpt):
    from edgessl.search import default_supernet
    from edgessl.search.assets import slim_supernet
    from edgessl.search.proxy import ProxyScorer, load_supernet, prepare_proxy_data

    net, info = load_supernet(str(default_supernet()))
    assert info["space"] == "mobilenet" and info["resolution"] == 40
    assert default_supernet().stat().st_size < 25e6
    slim = slim_supernet(supernet_ckpt, tmp_path / "slim.ckpt")
    data = prepare_proxy_data("digits", 32, bank=60, val=30)
    arch = get_space("mobilenet").sample(np.random.default_rng(0), resolution=224)
    full = ProxyScorer(load_supernet(str(supernet_ckpt))[0], data).score(arch)
    half = ProxyScorer(load_supernet(str(slim))[0], data).score(arch)
    assert abs(full - half) <= 2 / 30  # at most two of 30 validation images change vote


def test_sigint_through_the_cli_writes_what_was_found(supernet_ckpt, tmp_path):
    """A real Ctrl-C (SIGINT to the process) once a generation is done: exit 130, and every
    output is written from the candidates scored so far; candidates.csv appears after each
    generation, so even a SIGKILL keeps them."""
    import signal
    import subprocess
    import time

    from test_train_fixtures import edgessl_cmd, subprocess_env

    out = tmp_path / "sig"
    proc = subprocess.Popen(
        edgessl_cmd("search", "--supernet", supernet_ckpt, "--population", "6",
                    "--generations", "100000", "--proxy-bank", "60", "--proxy-val", "30",
                    "--device", "cpu", "--out", out, "--json"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    deadline = time.time() + 600
    while not (out / "candidates.csv").exists() and proc.poll() is None:
        assert time.time() < deadline, "no generation finished in 10 minutes"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 130, stderr[-2000:]
    summary = json.loads(stdout.splitlines()[-1])
    assert summary["interrupted"] and summary["evaluated"] >= 6
    for name in ("best.arch.json", "best.ckpt", "pareto.json", "pareto.png", "report.md"):
        assert (out / name).exists(), name
    assert "Interrupted" in (out / "report.md").read_text()
    assert "Traceback" not in stderr


def test_first_ctrl_c_is_a_request_and_the_second_interrupts():
    """GracefulStop turns the first SIGINT into a flag (nothing raised mid-work, so no
    third-party ``except:`` can swallow it), the second into KeyboardInterrupt, and puts the
    previous handler back on exit."""
    import os
    import signal

    from edgessl.utils import GracefulStop

    before = signal.getsignal(signal.SIGINT)
    with GracefulStop() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_a_stop_request_ends_the_evolution_after_that_generation():
    """run_nsga2 asks should_stop() after each generation and returns True once it says so:
    exactly the generations before the request are evaluated."""
    from edgessl.search.evolution import run_nsga2

    space = get_space("mobilenet")
    seen: list[int] = []
    stopped = run_nsga2(Constraints(space, Budget(max_mflops=300), 224), ("accuracy", "mflops"),
                        lambda genes, costs: -costs["mflops"], population=6, generations=50,
                        seed=0, on_generation=lambda g, X, F: seen.append(g),
                        should_stop=lambda: len(seen) >= 3)
    assert stopped and seen == [1, 2, 3]
    assert not run_nsga2(Constraints(space, Budget(max_mflops=300), 224), ("accuracy", "mflops"),
                         lambda genes, costs: -costs["mflops"], population=6, generations=2,
                         seed=0)


def test_label_free_proxy_ranks_a_damaged_subnet_below_an_intact_one(trained_run):  # noqa: F811
    """Without labels the proxy is the linear CKA with the largest subnet's embeddings: 1 for
    the largest itself, lower for a smaller subnet, and lower again once that subnet's
    features are damaged (noise in its first stage's weights)."""
    from edgessl.search.proxy import ProxyScorer, linear_cka, load_supernet, prepare_proxy_data

    x = torch.randn(64, 16)
    rot, _ = torch.linalg.qr(torch.randn(16, 16))
    assert linear_cka(x, 3 * x @ rot) == pytest.approx(1.0, abs=1e-5)
    assert linear_cka(x, x + 0.1 * torch.randn(64, 16)) > linear_cka(x, torch.randn(64, 16))
    net, _ = load_supernet(str(trained_run / "last.ckpt"))
    data = prepare_proxy_data("digits", 16, bank=60, val=60, use_labels=False)
    scorer = ProxyScorer(net, data)
    space = net.space
    assert scorer.kind == "cka" and scorer.score(space.largest(224)) == pytest.approx(1.0)
    arch = space.smallest(224)
    intact = scorer.score(arch)
    with torch.no_grad():  # the teacher's embeddings are cached: only the subnet changes
        for p in net.stages[0].parameters():
            p.add_(torch.randn_like(p) * p.std().clamp_min(1e-3) * 3)
    scorer.cache.clear()
    assert intact < 1.0 and scorer.score(arch) < intact
