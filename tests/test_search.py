"""Search: constraints before building, NSGA-II outputs, latency budget, Ctrl-C, bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from edgessl.arch import Arch
from edgessl.checkpoint import TRAIN_FORMAT, load_model, save_checkpoint
from edgessl.cost.latency import LatencyTable
from edgessl.errors import BadInput
from edgessl.search import Budget, Constraints, SearchConfig, run_search
from edgessl.spaces import get_space
from edgessl.supernet import Supernet

TINY = ["--population", "6", "--generations", "2", "--proxy-bank", "60", "--proxy-val", "30",
        "--device", "cpu"]


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
    assert r.code == 0 and 0 <= json.loads(r.out)["knn"] <= 1


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


def test_ctrl_c_writes_what_was_found(supernet_ckpt, tmp_path, monkeypatch):
    import edgessl.search.run as run_mod

    real = run_mod.run_nsga2

    def interrupt_after_first(constraints, objectives, score, population, generations, seed,
                              on_generation):
        def stop(gen, X, F):
            on_generation(gen, X, F)
            raise KeyboardInterrupt

        real(constraints, objectives, score, population, generations, seed, stop)

    monkeypatch.setattr(run_mod, "run_nsga2", interrupt_after_first)
    cfg = SearchConfig(out=tmp_path / "int", supernet=str(supernet_ckpt), population=6,
                       generations=5, bank=60, val=30, device="cpu")
    result = run_search(cfg)
    assert result.interrupted and result.info["generations_done"] == 1
    assert (tmp_path / "int" / "best.arch.json").exists()
    assert "Interrupted" in (tmp_path / "int" / "report.md").read_text()


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
    assert info["space"] == "mobilenet" and info["resolution"] == 32
    assert default_supernet().stat().st_size < 25e6
    slim = slim_supernet(supernet_ckpt, tmp_path / "slim.ckpt")
    data = prepare_proxy_data("digits", 32, bank=60, val=30)
    arch = get_space("mobilenet").sample(np.random.default_rng(0), resolution=224)
    full = ProxyScorer(load_supernet(str(supernet_ckpt))[0], data).score(arch)
    half = ProxyScorer(load_supernet(str(slim))[0], data).score(arch)
    assert abs(full - half) <= 2 / 30  # at most two of 30 validation images change vote
