"""``edgessl profile`` on real measurements of a tiny configuration: round-trip, refusals,
resume after an interruption, and the CLI (the device kit is in test_profile_device.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgessl.arch import Arch, Block
from edgessl.cost.latency import LatencyTable
from edgessl.errors import BadInput
from edgessl.profile import measure
from edgessl.profile.blocks import Choices, enumerate_specs, sample_arch
from edgessl.profile.measure import Settings, profile
from edgessl.spaces import get_space

SPACE = get_space("mobilenet")
TINY = {"resolutions": [128], "width_mults": [1.0], "kernels": [3], "expands": [3]}
TINY_ARGS = ["--resolution", "128", "--width-mult", "1.0", "--kernel", "3", "--expand", "3"]
FAST = {"runs": 6, "rounds": 2, "warmup": 1, "net_runs": 3}


def tiny_arch(seed: int = 0) -> Arch:
    return sample_arch(SPACE, Choices.of(SPACE, **TINY), np.random.default_rng(seed), 128)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """A real tiny table: 25 entries, 3 calibration and 3 validation subnets at 128."""
    path = tmp_path_factory.mktemp("lat") / "tiny.json"
    table = profile(Settings(**TINY, **FAST, calibrate=3, validate=3), path)
    return table, path


def test_real_table_has_entries_metadata_and_validation(measured):
    table, path = measured
    keys = enumerate_specs(SPACE, Choices.of(SPACE, **TINY))
    assert set(table.entries) == set(keys)
    for e in table.entries.values():
        assert 0 < e["p10_ms"] <= e["median_ms"] <= e["p90_ms"] and e["count"] == 6
    m = table.meta
    assert m["format"] == "edgessl-latency/1" and m["backend"] == "onnxruntime-cpu"
    assert m["backend_version"].startswith("onnxruntime ") and m["clock"] == "cpu"
    assert m["resolutions"] == [128] and m["complete"] and m["device"] and m["date"]
    assert table.overhead["per_resolution"]["128"]["n"] == 3
    v = table.validation["per_resolution"]["128"]
    assert v["n"] == 3 and 0 <= v["within_10pct"] <= 1 and v["mape"] >= 0
    assert table.validation["held_out"]
    assert len([n for n in table.networks if n["role"] == "validate"]) == 3


def test_round_trip(measured, tmp_path):
    table, path = measured
    loaded = LatencyTable.load(path)
    assert loaded.entries == table.entries and loaded.overhead == table.overhead
    assert loaded.validation == table.validation
    arch = tiny_arch(5)
    assert loaded.predict(arch) == pytest.approx(table.predict(arch))
    assert loaded.predict(arch) > 0
    again = loaded.save(tmp_path / "again.json")
    assert json.loads(again.read_text()) == json.loads(path.read_text())


def test_missing_entry_and_wrong_space_backend_version(measured, tmp_path, cli):
    _, path = measured
    table = LatencyTable.load(path)
    arch = tiny_arch(1)
    wide = arch.replace(stages=((Block(5, 3),) + arch.stages[0][1:],) + arch.stages[1:])
    with pytest.raises(BadInput, match=r"no entry 'mbconv\|in=64x64x16\|.*\|k=5\|"):
        table.predict(wide)
    wide.save(tmp_path / "wide.json")
    r = cli("cost", str(tmp_path / "wide.json"), "--latency-table", str(path))
    assert r.code == 2 and "no entry 'mbconv|" in r.err and "k=5" in r.err
    arch.save(tmp_path / "ok.json")
    r = cli("cost", str(tmp_path / "ok.json"), "--latency-table", str(path), "--json")
    assert r.code == 0, r
    assert json.loads(r.out)["latency_ms"] == pytest.approx(table.predict(arch))
    with pytest.raises(BadInput, match="for space 'mobilenet', not 'resnet'"):
        LatencyTable.load(path, space="resnet")
    with pytest.raises(BadInput, match="not 'torch-cpu'"):
        LatencyTable.load(path, backend="torch-cpu")
    data = json.loads(path.read_text())
    bad = tmp_path / "v2.json"
    bad.write_text(json.dumps({**data, "format": "edgessl-latency/2"}))
    r = cli("cost", str(tmp_path / "ok.json"), "--latency-table", str(bad))
    assert r.code == 2 and "edgessl-latency/2" in r.err and "\n" == r.err[-1]


def test_resume_after_interrupt(tmp_path, monkeypatch):
    path = tmp_path / "resume.json"
    settings = Settings(**TINY, **FAST, chunk=4)
    real = measure.module_session
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 11:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(measure, "module_session", flaky)
    with pytest.raises(KeyboardInterrupt):
        profile(settings, path)
    partial = json.loads(path.read_text())
    assert partial["complete"] is False and len(partial["entries"]) == 8  # two chunks of 4
    with pytest.raises(BadInput, match="unfinished"):
        LatencyTable.load(path).predict(tiny_arch())
    calls.clear()
    monkeypatch.setattr(measure, "module_session",
                        lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    table = profile(settings, path)
    assert table.complete and len(calls) == len(table.entries) - 8
    for key, value in partial["entries"].items():
        assert table.entries[key] == value  # kept, not re-measured
    with pytest.raises(BadInput, match="exists with threads=1, not 2"):
        profile(Settings(**TINY, **FAST, threads=2), path)


def test_torch_cpu_backend_measures(tmp_path):
    table = profile(Settings(**TINY, **FAST, backend="torch-cpu"), tmp_path / "torch.json")
    assert table.meta["backend"] == "torch-cpu" and table.meta["backend_version"].startswith(
        "torch ")
    assert table.predict(tiny_arch(2)) > 0


def test_cli_profile_json_and_bad_options(tmp_path, cli):
    out = tmp_path / "cli.json"
    r = cli("profile", *TINY_ARGS, "--runs", "4", "--rounds", "1", "--warmup", "1",
            "--out", str(out), "--json")
    assert r.code == 0, r
    info = json.loads(r.out)
    assert info["entries"] == 25 and info["complete"] and info["table"] == str(out)
    r = cli("profile", "--backend", "npu", "--out", str(out))
    assert r.code == 2 and "unknown backend 'npu'" in r.err
    r = cli("profile", "--kernel", "4", "--out", str(tmp_path / "x.json"))
    assert r.code == 2 and "--kernel 4" in r.err
    r = cli("profile", "--runs", "0", "--out", str(tmp_path / "x.json"))
    assert r.code == 2 and "--runs 0" in r.err
    r = cli("profile", "--bundle", str(tmp_path / "b"), "--out", str(out))
    assert r.code == 2 and "exactly one of" in r.err
    r = cli("profile", "--help")
    assert r.code == 0 and "Example" in r.out


@pytest.mark.parametrize("args, needle", [
    (["--out", "{tmp}"], "is a folder"),
    (["--net-runs", "0", "--out", "{x}"], "--net-runs 0"),
    (["--net-chunk", "0", "--out", "{x}"], "--net-chunk 0"),
    (["--import", "{tmp}"], "is a folder"),
    (["--clock", "sundial", "--out", "{x}"], "'sundial'"),
])
def test_cli_profile_more_bad_options(tmp_path, cli, args, needle):
    subs = {"{tmp}": str(tmp_path), "{x}": str(tmp_path / "x.json")}
    r = cli("profile", *[subs.get(a, a) for a in args])
    assert r.code == 2 and needle in r.err, (args, r)
    assert r.err.startswith("error: ") and r.err.count("\n") == 1 and r.out == "", r
    assert not (tmp_path / "x.json").exists()


# ---- profile --check and --recalibrate on the measured tiny table -------------------------------
CHEAP = ["--net-runs", "3", "--rounds", "1", "--warmup", "1"]


def test_check_times_fresh_exported_subnets_against_the_table(measured, tmp_path):
    from edgessl.deploy.onnx import describe_onnx
    from edgessl.profile.check import CheckSettings, check

    table, path = measured
    keep = tmp_path / "keep"
    report = check(path, CheckSettings(subnets=2, net_runs=3, rounds=1, warmup=1, keep=keep,
                                       anchors=2), plot=tmp_path / "c.png")
    nets = [n for n in report["networks"] if n["role"] == "check"]
    old = {Arch.from_dict(n["arch"]).to_json() for n in table.networks}
    archs = [Arch.from_dict(n["arch"]) for n in nets]
    assert len(archs) == 2 and len({a.to_json() for a in archs}) == 2
    assert not old & {a.to_json() for a in archs}  # fresh: none the table fitted or validated
    for i, (net, arch) in enumerate(zip(nets, archs, strict=True)):
        assert arch.resolution == 128 and {(b.kernel, b.expand) for s in arch.stages
                                           for b in s} == {(3, 3)}  # the table's sub-space
        assert net["predicted_ms"] == pytest.approx(table.predict(arch), abs=1e-6)
        assert net["measured"]["count"] == 3  # --net-runs given; else the table's timing
        kept = describe_onnx(keep / f"{i:04d}.onnx")  # the file edgessl export writes
        assert kept["inputs"][0]["shape"] == [1, 3, 128, 128] and kept["opset"]["ai.onnx"] == 20
        assert Arch.load(keep / f"{i:04d}.arch.json") == arch
    ratios = [n["measured"]["median_ms"] / n["predicted_ms"] for n in nets]
    res = report["results"]
    assert res["128"]["n"] == 2 and res["all"]["drift"] == pytest.approx(np.median(ratios),
                                                                         abs=1e-4)
    errors = [abs(1 / r - 1) for r in ratios]
    assert res["128"]["within_10pct"] == np.mean([e <= 0.10 for e in errors])
    assert res["128"]["mape"] == pytest.approx(np.mean(errors), abs=1e-4)
    assert report["timing"]["net_runs"] == 3 and report["clock"] == table.meta["clock"]
    assert (tmp_path / "c.png").stat().st_size > 1000
    spreads = [n["measured"]["p90_ms"] / n["measured"]["p10_ms"] for n in report["networks"]]
    noise = report["timing_noise"]
    assert noise["median_p90_over_p10"] == pytest.approx(np.median(spreads), abs=1e-3)
    assert noise["noisy"] == (noise["median_p90_over_p10"] > 1.3)
    # the anchors: two of the table's own subnets re-timed beside them, now against then
    then = {Arch.from_dict(n["arch"]).to_json(): n["measured"]["median_ms"]
            for n in table.networks}
    anchors = [n for n in report["networks"] if n["role"] == "anchor"]
    assert len(anchors) == 2 and all(Arch.from_dict(n["arch"]).to_json() in then
                                     for n in anchors)
    ratios = [n["measured"]["median_ms"] / then[Arch.from_dict(n["arch"]).to_json()]
              for n in anchors]
    speed = report["host_speed"]
    assert speed["ratios"]["128"] == {"n": 2, "ratio": pytest.approx(np.median(ratios),
                                                                     abs=1e-4)}
    assert speed["then"]["date"] == table.meta["date"]
    assert report["results_at_table_speed"]["128"]["n"] == 2
    off = check(path, CheckSettings(subnets=1, net_runs=3, rounds=1, warmup=1, anchors=0))
    assert off["host_speed"] is None and {n["role"] for n in off["networks"]} == {"check"}


def test_host_speed_tells_a_faster_host_from_a_wrong_table():
    """A synthetic device: the table is right up to 2% noise, but the host now runs 15%
    faster than when the table (and so its anchors) was measured. The raw check fails every
    subnet; the anchors recover the 0.85 and, with it taken out, every subnet is within 5%.
    A table that is wrong in shape (one subnet 30% off) stays wrong after the same step."""
    from edgessl.profile.check import at_table_speed, host_speed, score_networks

    rng = np.random.default_rng(0)
    table = LatencyTable({"resolutions": [128]}, {})
    table.predict = lambda arch: 5.0 + sum(map(len, arch.stages))  # noqa: E731 (a stub)
    archs = [tiny_arch(i) for i in range(12)]
    anchors = [{"role": "validate", "arch": a.to_dict(),
                "measured": {"median_ms": table.predict(a) * (1 + rng.normal(0, 0.01))}}
               for a in archs[:3]]
    now = [{"role": "anchor", "arch": a["arch"],
            "measured": {"median_ms": a["measured"]["median_ms"] * 0.85}} for a in anchors]
    checks = [{"role": "check", "arch": a.to_dict(),
               "measured": {"median_ms": table.predict(a) * 0.85 * (1 + rng.normal(0, 0.01))}}
              for a in archs[3:]]
    raw = score_networks(table, checks)
    assert raw["128"]["within_10pct"] == 0.0 and raw["128"]["drift"] == pytest.approx(0.85,
                                                                                         abs=0.02)
    speed = host_speed(anchors, now + checks)
    assert speed["128"]["n"] == 3 and speed["128"]["ratio"] == pytest.approx(0.85, abs=1e-9)
    adjusted = at_table_speed(checks, speed)
    assert adjusted["128"]["within_5pct"] == 1.0
    checks[0]["measured"]["median_ms"] *= 1.3
    score_networks(table, checks)
    assert at_table_speed(checks, speed)["128"]["within_10pct"] == pytest.approx(8 / 9, abs=1e-3)
    assert host_speed(anchors, checks) is None  # no anchor re-timed: nothing to tell


def test_cli_check_prints_the_scores_and_writes_the_plot(measured, cli, tmp_path, monkeypatch):
    _, path = measured
    monkeypatch.chdir(tmp_path)
    r = cli("profile", "--check", path, "--subnets", 1, *CHEAP)
    assert r.code == 0, r
    out = " ".join(r.out.split())  # the console wraps at its width (another under xdist)
    assert "1 fresh subnets per resolution" in out and "drift" in out
    assert "device then:" in out and "scatter plot: tiny-check.png" in out
    assert "host speed: 3 of the table's own subnets, re-timed now" in out  # made here
    assert "with that taken out, within ±10%: 128 px" in out
    assert (tmp_path / "tiny-check.png").stat().st_size > 1000
    data = json.loads(path.read_text())
    data["device"] = "a Jetson Orin Nano, 15 W"  # the same table, said to be made elsewhere
    (tmp_path / "orin.json").write_text(json.dumps(data))
    r = cli("profile", "--check", tmp_path / "orin.json", "--subnets", 1, *CHEAP)
    out = " ".join(r.out.split())
    assert r.code == 0 and "device speed: 3 of the table's own subnets" in out, r
    assert "(on another device: a Jetson Orin Nano, 15 W)" in out
    monkeypatch.setattr("edgessl.profile.check.NOISY", 0.5)  # any host is "noisy" now
    r = cli("profile", "--check", path, "--subnets", 1, *CHEAP, "--plot", tmp_path / "n.png")
    out = " ".join(r.out.split())
    assert r.code == 0 and "warning: the host was noisy while timing" in out, r


def test_recalibrate_refits_from_few_subnets_and_records_where(measured, cli, tmp_path):
    from edgessl.profile.check import TAG_CHECK, fresh_archs, sha256_of

    table, path = measured
    before = path.read_bytes()
    new_path = tmp_path / "new.json"
    r = cli("profile", "--recalibrate", path, "--subnets", 2, "--validate", 1, *CHEAP,
            "--out", new_path, "--json")
    assert r.code == 0, r
    report = json.loads(r.out)
    assert path.read_bytes() == before  # the source table is never written
    new = LatencyTable.load(new_path)
    rec = new.meta["recalibrated"]
    assert rec["from"] == str(path) and rec["from_sha256"] == sha256_of(path)
    assert rec["subnets"] == 2 and rec["base_overhead"] == table.overhead
    assert [n["role"] for n in new.networks].count("recalibrate") == 2
    assert [n["role"] for n in new.networks].count("validate") == 1
    c = report["corrections"]["128"]
    assert new.overhead["corrections"]["128"] == c
    arch = tiny_arch(11)
    assert new.predict(arch) == pytest.approx(c * table.predict(arch), rel=1e-4)
    assert report["before"]["128"]["n"] == report["after"]["128"]["n"] == 1
    assert new.validation["per_resolution"]["128"]["mape"] == report["after"]["128"]["mape"]
    assert new_path.with_suffix(".png").is_file()
    # a later --check of the new table scores other subnets than the ones it was fitted on
    fitted = {Arch.from_dict(n["arch"]).to_json() for n in new.networks}
    assert not fitted & {a.to_json() for a in fresh_archs(new, {128: 3}, 1, TAG_CHECK)}
    r = cli("profile", "--recalibrate", path, "--out", new_path)
    assert r.code == 2 and "exists" in r.err  # nothing already written is overwritten


@pytest.mark.parametrize("args, needle", [
    (["--check", "{x}"], "not found"),
    (["--check", "{t}", "--threads", "2"], "--threads 2 does not match the table's threads 1"),
    (["--check", "{t}", "--dtype", "fp16"], "--dtype fp16 does not match"),
    (["--check", "{t}", "--kernel", "5"], "--kernel applies when measuring a table"),
    (["--check", "{t}", "--resolution", "224"], "--resolution 224: the table covers 128"),
    (["--check", "{t}", "--subnets", "0"], "--subnets 0 must be at least 1"),
    (["--check", "{t}", "--net-runs", "0"], "--net-runs 0 must be at least 1"),
    (["--check", "{t}", "--seed", "-1"], "--seed -1 must be at least 0"),
    (["--seed", "-1", "--out", "{x}"], "--seed -1 must be at least 0"),
    (["--check", "{t}", "--out", "{x}"], "exactly one of"),
    (["--check", "{t}", "--validate", "3"], "--validate goes with --recalibrate"),
    (["--recalibrate", "{t}", "--subnets", "11", "--out", "{x}"], "--subnets 11"),
    (["--recalibrate", "{t}"], "--recalibrate needs --out"),
    (["--recalibrate", "{t}", "--out", "{t}"], "is the table itself"),
    (["--recalibrate", "{t}", "--validate", "0", "--out", "{x}"], "--validate 0"),
    (["--subnets", "3", "--out", "{x}"], "--subnets goes with --check"),
    (["--check", "{t}", "--anchors", "-1"], "--anchors -1 must be at least 0"),
    (["--recalibrate", "{t}", "--anchors", "2", "--out", "{x}"], "--anchors goes with --check"),
    (["--anchors", "2", "--out", "{x}"], "--anchors goes with --check"),
])
def test_cli_check_and_recalibrate_refusals(measured, cli, tmp_path, args, needle):
    subs = {"{t}": str(measured[1]), "{x}": str(tmp_path / "x.json")}
    r = cli("profile", *[subs.get(a, a) for a in args])
    assert r.code == 2 and needle in r.err, (args, r)
    assert r.err.startswith("error: ") and r.err.count("\n") == 1 and r.out == "", r
    assert not (tmp_path / "x.json").exists()
