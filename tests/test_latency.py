"""The latency table and predictor on synthetic tables (no measuring): fast logic checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgessl.arch import Arch
from edgessl.cost.latency import BACKENDS, FORMAT, LatencyTable, boundary_keys
from edgessl.deploy.bench import get_backend
from edgessl.errors import BadInput
from edgessl.profile.blocks import Choices, enumerate_specs, sample_arch
from edgessl.profile.recalibration import design, features, recalibrated_overhead
from edgessl.profile.validate import drift, finalize, scores
from edgessl.runtime.backends import BACKENDS as REGISTRY
from edgessl.spaces import get_space

SPACE = get_space("mobilenet")


def synthetic(choices: Choices | None = None, probes: bool = True) -> LatencyTable:
    """Entries with made-up but distinct values for a sub-space of mobilenet."""
    choices = choices or Choices.of(SPACE, [128, 224])
    entries = {}
    for i, key in enumerate(enumerate_specs(SPACE, choices)):
        if key.startswith("probe|") and not probes:
            continue
        base = 0.01 if key.startswith("probe|") and key.endswith("n=1") else 0.015
        value = base if key.startswith("probe|") else 0.05 + (i % 17) * 0.01
        entries[key] = {"median_ms": value, "p10_ms": value, "p90_ms": value, "count": 3}
    meta = {"format": FORMAT, "space": "mobilenet", "backend": "onnxruntime-cpu",
            "threads": 1, "batch": 1, "dtype": "fp32", "resolutions": list(choices.resolutions),
            "choices": choices.to_dict(), "complete": True}
    return LatencyTable(meta, entries)


def test_enumeration_covers_every_layout_spec():
    choices = Choices.of(SPACE)
    specs = enumerate_specs(SPACE, choices)
    blocks = [k for k in specs if not k.startswith("probe|")]
    # per (resolution, width): stem + first block + head + 5 stages x 2 positions x 9 choices
    assert len(blocks) == 4 * 2 * (3 + 5 * 2 * 9)
    rng = np.random.default_rng(0)
    for _ in range(60):
        arch = SPACE.sample(rng)
        layout = SPACE.layout(arch).all()
        for i, spec in enumerate(layout):
            assert spec.key in specs
            if i < len(layout) - 1:
                assert set(boundary_keys(spec)) <= set(specs)


def test_predict_is_sum_of_entries_minus_boundaries_then_fit():
    table = synthetic()
    arch = SPACE.sample(np.random.default_rng(1), 224)
    layout = SPACE.layout(arch).all()
    expected = sum(table.entries[s.key]["median_ms"] for s in layout)
    expected -= sum(2 * 0.01 - 0.015 for _ in layout[:-1])
    assert table.predict(arch) == pytest.approx(expected)
    table.overhead = {"per_resolution": {"224": {"scale": 2.0, "per_block_ms": 0.01,
                                                 "offset_ms": 0.5}},
                      "all": {"scale": 3.0, "offset_ms": 0.0}}
    table._cache.clear()
    assert table.n_blocks(arch) == len(layout)
    assert table.predict(arch) == pytest.approx(2 * expected + 0.01 * len(layout) + 0.5)
    other = arch.replace(resolution=128)
    assert table.predict(other) == pytest.approx(3 * table.raw_sum(other))
    many = table.predict_many([arch, other, arch])
    assert many.shape == (3,) and many[0] == many[2] == pytest.approx(table.predict(arch))


def test_predict_genes_matches_predict():
    table = synthetic()
    table.overhead = {"per_resolution": {"128": {"scale": 1.1, "per_block_ms": 0.02,
                                                 "offset_ms": 0.3}},
                      "all": {"scale": 0.9, "per_block_ms": 0.0, "offset_ms": 0.1}}
    rng = np.random.default_rng(4)
    archs = [SPACE.sample(rng, int(rng.choice([128, 224]))) for _ in range(200)]
    genes = np.stack([SPACE.encode(a) for a in archs])
    np.testing.assert_allclose(table.predict_genes(genes), table.predict_many(archs))
    with pytest.raises(BadInput, match="no entry 'conv|in=160x160"):
        table.predict_genes(SPACE.encode(SPACE.sample(rng, 160))[None])
    with pytest.raises(BadInput, match="genes have 3 columns"):
        table.predict_genes(np.zeros((2, 3), dtype=int))


def test_table_without_probes_sums_entries():
    table = synthetic(probes=False)
    arch = SPACE.sample(np.random.default_rng(2), 128)
    assert table.predict(arch) == pytest.approx(
        sum(table.entries[s.key]["median_ms"] for s in SPACE.layout(arch).all()))


def test_missing_entry_is_named():
    table = synthetic(Choices.of(SPACE, [128], [1.0], [3], [3]))
    arch = sample_arch(SPACE, Choices.of(SPACE, [128], [1.0], [3], [3]),
                       np.random.default_rng(0), 128)
    table.predict(arch)
    bad = arch.replace(stages=((arch.stages[0][0].__class__(7, 3),) + arch.stages[0][1:],)
                       + arch.stages[1:])
    with pytest.raises(BadInput, match=r"no entry 'mbconv\|.*\|k=7\|"):
        table.predict(bad)
    with pytest.raises(BadInput, match="no entry 'conv"):
        table.predict(arch.replace(width_mult=1.2))


def test_refusals(tmp_path):
    table = synthetic(Choices.of(SPACE, [128], [1.0], [3], [3]))
    path = table.save(tmp_path / "t.json")
    LatencyTable.load(path, space="mobilenet", backend="onnxruntime-cpu")
    with pytest.raises(BadInput, match="space 'mobilenet', not 'resnet'"):
        LatencyTable.load(path, space="resnet")
    with pytest.raises(BadInput, match="backend 'onnxruntime-cpu', not 'tensorrt'"):
        LatencyTable.load(path, backend="tensorrt")
    resnet_arch = get_space("resnet").sample(np.random.default_rng(0))
    with pytest.raises(BadInput, match="arch is of space 'resnet'"):
        table.predict(resnet_arch)
    with pytest.raises(BadInput, match="baseline"):
        table.predict("resnet18")
    data = json.loads(path.read_text())
    for change, match in (({"format": "edgessl-latency/9"}, "format 'edgessl-latency/9'"),
                          ({"backend": "coreml"}, "unknown backend 'coreml'"),
                          ({"entries": {"x": {"p10_ms": 1}}}, "entry 'x' has no valid")):
        p = tmp_path / "bad.json"
        p.write_text(json.dumps({**data, **change}))
        with pytest.raises(BadInput, match=match):
            LatencyTable.load(p)
    p.write_text("{not json")
    with pytest.raises(BadInput, match="cannot be read"):
        LatencyTable.load(p)
    with pytest.raises(BadInput, match="not found"):
        LatencyTable.load(tmp_path / "nope.json")
    partial = LatencyTable({**table.meta, "complete": False}, table.entries)
    with pytest.raises(BadInput, match="unfinished"):
        partial.predict(SPACE.smallest(128))


def test_finalize_fits_calibration_and_scores_held_out():
    table = synthetic()
    rng = np.random.default_rng(3)
    for role, n in (("calibrate", 6), ("validate", 8)):
        for res in (128, 224):
            for _ in range(n):
                arch = SPACE.sample(rng, res)
                raw = table.raw_sum(arch)
                truth = (0.9 if res == 224 else 1.1) * raw + (0.3 if res == 224 else 0.1)
                table.networks.append({"role": role, "arch": arch.to_dict(),
                                       "measured": {"median_ms": truth}})
    finalize(table)
    fit = table.overhead["per_resolution"]["224"]
    assert fit["scale"] == pytest.approx(0.9) and fit["offset_ms"] == pytest.approx(0.3)
    assert fit["per_block_ms"] == 0  # 6 subnets: too few for the per-block term
    v = table.validation
    assert v["held_out"] and v["all"]["n"] == 16 and v["all"]["within_10pct"] == 1.0
    assert v["per_resolution"]["128"]["mape"] == pytest.approx(0, abs=1e-6)
    arch = Arch.from_dict(table.networks[-1]["arch"])
    assert table.predict(arch) == pytest.approx(table.networks[-1]["measured"]["median_ms"])


def test_finalize_fits_per_block_term():
    table = synthetic()
    rng = np.random.default_rng(5)
    for role, n in (("calibrate", 12), ("validate", 5)):
        for _ in range(n):
            arch = SPACE.sample(rng, 224)
            truth = 0.8 * table.raw_sum(arch) + 0.05 * table.n_blocks(arch) - 0.2
            table.networks.append({"role": role, "arch": arch.to_dict(),
                                   "measured": {"median_ms": truth}})
    finalize(table)
    fit = table.overhead["per_resolution"]["224"]
    assert fit["per_block_ms"] == pytest.approx(0.05, abs=1e-5)
    assert fit["scale"] == pytest.approx(0.8, abs=1e-5)
    assert table.validation["all"]["max_ape"] < 1e-5


def test_scores():
    s = scores(np.array([1.0, 2.0, 3.3, 4.0]), np.array([1.0, 2.1, 3.0, 5.0]))
    assert s["n"] == 4 and s["within_10pct"] == 0.75 and s["spearman"] == pytest.approx(1.0)
    assert s["mape"] == pytest.approx((0 + 0.1 / 2.1 + 0.1 + 0.2) / 4, abs=1e-4)


def test_backend_registry_matches_table_backends():
    assert tuple(REGISTRY) == BACKENDS
    with pytest.raises(BadInput, match="unknown backend 'npu'"):
        get_backend("npu")
    with pytest.raises(BadInput, match="unknown backend 'coreml'"):
        LatencyTable.from_dict({**synthetic().to_dict(), "backend": "coreml"})


@pytest.mark.parametrize("name", ["tensorrt", "onnxruntime-cuda", "torch-cuda"])
def test_unavailable_backends_are_bad_input(name):
    if REGISTRY[name].unavailable() is None:
        pytest.skip(f"{name} is available here")
    with pytest.raises(BadInput, match=f"backend {name} is not available"):
        get_backend(name)


@pytest.mark.parametrize("overhead, needle", [
    ({"per_resolution": {"224": {"offset_ms": 0.1}}}, "per_resolution['224'] lacks a numeric "
                                                       "'scale'"),
    ({"per_resolution": {"224": {"scale": 1.0}}}, "lacks a numeric 'offset_ms'"),
    ({"per_resolution": {"224": {"scale": "1", "offset_ms": 0}}}, "numeric 'scale'"),
    ({"all": {"scale": 1.0, "offset_ms": 0, "per_block_ms": None}}, "all lacks a numeric "
                                                                     "'per_block_ms'"),
    ({"per_resolution": {"224": 3}}, "fit per_resolution['224'] is not an object"),
    ({"per_resolution": []}, "per_resolution must be an object"),
    ("fit", "overhead must be an object"),
    ({"kernel_factors": {"7": -1.2}}, "kernel_factors must map kernel sizes to positive"),
    ({"size_exponent": {"g": 3, "ref_ms": 5.0}}, "size_exponent must be"),
    ({"size_exponent": {"g": 0.1}}, "size_exponent must be"),
])
def test_table_with_a_broken_fit_is_refused(tmp_path, cli, overhead, needle):
    """A fit lacking its terms is refused when the table is read (it used to be a KeyError in
    the middle of a prediction): exit 2, one line, on every command that reads tables."""
    table = synthetic(Choices.of(SPACE, [128], [1.0], [3], [3]))
    data = table.to_dict()
    data["overhead"] = overhead
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    with pytest.raises(BadInput, match=needle.replace("[", r"\[").replace("]", r"\]")):
        LatencyTable.load(path)
    arch = sample_arch(SPACE, Choices.of(SPACE, [128], [1.0], [3], [3]),
                       np.random.default_rng(0), 128)
    arch.save(tmp_path / "a.json")
    for args in (("cost", tmp_path / "a.json", "--latency-table", path),
                 ("profile", "--check", path)):
        r = cli(*args)
        assert r.code == 2 and r.err.startswith("error: ") and r.err.count("\n") == 1, r
        assert "overhead" in r.err


def test_recalibration_recovers_a_drift_that_grows_with_resolution():
    """A device 10% slower at 128 px and 21% slower at 224 px than the table (log-linear in
    between): ten subnets recover the correction, and the new terms predict every arch, also
    at the resolutions no subnet was measured at, as the table times c(r)."""
    choices = Choices.of(SPACE, [128, 160, 192, 224])
    table = synthetic(choices)
    table.meta["resolutions"] = [128, 160, 192, 224]
    table.overhead = {"per_resolution": {"224": {"scale": 0.9, "per_block_ms": 0.02,
                                                 "offset_ms": 0.1}},
                      "all": {"scale": 1.0, "per_block_ms": 0.0, "offset_ms": 0.05}}
    table._cache.clear()
    truth = {r: float(np.exp(np.log(1.1) + (np.log(1.21) - np.log(1.1)) * (r - 128) / 96))
             for r in (128, 160, 192, 224)}
    rng = np.random.default_rng(7)
    samples = []
    for r in [128] * 5 + [224] * 5:
        arch = SPACE.sample(rng, r)
        samples.append((arch, truth[r] * table.predict(arch)))
    new = recalibrated_overhead(table, samples)
    assert list(new["kernel_factors"].values()) == pytest.approx([1.0, 1.0], abs=1e-6)
    for r in (128, 160, 192, 224):
        assert new["corrections"][str(r)] == pytest.approx(truth[r], rel=1e-5)
    after = LatencyTable(dict(table.meta), table.entries, new)
    for r in (128, 160, 192, 224):
        arch = SPACE.sample(rng, r)
        assert after.predict(arch) == pytest.approx(truth[r] * table.predict(arch), rel=1e-5)
    assert new["per_resolution"]["128"]["n"] == 5 and new["per_resolution"]["160"]["n"] == 0
    # one resolution measured: one factor (the median), applied everywhere
    flat = recalibrated_overhead(table, [(a, m * table.predict(a)) for a, m in zip(
        [SPACE.sample(rng, 128) for _ in range(3)], (1.2, 1.1, 1.5), strict=True)])
    assert list(flat["corrections"].values()) == pytest.approx([1.2] * 4)
    assert drift(np.array([1.0, 2.0, 4.0]), np.array([1.1, 2.0, 5.0])) == 1.1


def _device(table: LatencyTable, factors: dict[int, float], c: dict[int, float]):
    """A synthetic device: each block's ms times ``factors[kernel]``, all times ``c[r]``."""
    truth = LatencyTable(table.meta, table.entries,
                         {**table.overhead, "kernel_factors": {str(k): f
                                                               for k, f in factors.items()}})
    return lambda arch: c[arch.resolution] * truth.predict(arch)


def _drifting_table() -> tuple[LatencyTable, dict[int, float]]:
    """A synthetic four-resolution table with one fit, and a drift c(r) of 1.6x at 128 px
    growing log-linearly to 1.8x at 224 px."""
    table = synthetic(Choices.of(SPACE, [128, 160, 192, 224]))
    table.overhead = {"per_resolution": {}, "all": {"scale": 0.9, "per_block_ms": 0.01,
                                                    "offset_ms": 0.1}}
    table._cache.clear()
    return table, {r: float(1.6 * np.exp(0.12 * (r - 128) / 96)) for r in (128, 160, 192, 224)}


def test_recalibration_learns_which_kernel_sizes_got_slower():
    """On another CPU 7x7 blocks run 1.35x and 5x5 1.12x slower relative to 3x3 (plus a drift
    c(r)): ten designed subnets recover the factors, and random subnets none of them saw are
    then predicted within 1.5%, where one correction per resolution misses some by over 5%."""
    table, drift_c = _drifting_table()
    measure = _device(table, {3: 1.0, 5: 1.12, 7: 1.35}, drift_c)
    rng = np.random.default_rng(3)
    pool = [SPACE.sample(rng, r) for r in (128, 160, 192, 224) for _ in range(20)]
    cal = design(table, pool, {128: 3, 160: 3, 192: 2, 224: 2})
    assert [a.resolution for a in cal].count(128) == 3 and len(cal) == 10
    x = features(table, cal)
    assert np.ptp(x[:, 2]) > 0.5 and np.ptp(x[:, 3]) > 0.5  # 5x5 and 7x7 shares tell apart
    new = LatencyTable(table.meta, table.entries,
                       recalibrated_overhead(table, [(a, measure(a)) for a in cal]))
    factors = new.overhead["kernel_factors"]
    # (ridge-shrunk toward 1: a few points low)
    assert factors["5"] / factors.get("3", 1.0) == pytest.approx(1.12, abs=0.04)
    assert factors["7"] / factors.get("3", 1.0) == pytest.approx(1.35, abs=0.04)
    held = [SPACE.sample(rng, r) for r in (128, 224) for _ in range(30)]
    truth = np.array([measure(a) for a in held])
    assert np.max(np.abs(new.predict_many(held) / truth - 1)) < 0.015
    genes = np.stack([SPACE.encode(a) for a in held])
    np.testing.assert_allclose(new.predict_genes(genes), new.predict_many(held))
    trend_only = recalibrated_overhead(table, [(a, measure(a)) for a in cal[:5]])
    assert "kernel_factors" not in trend_only  # fewer subnets than the kernel terms need
    old = LatencyTable(table.meta, table.entries, trend_only)
    assert np.max(np.abs(old.predict_many(held) / truth - 1)) > 0.05
    # re-calibrating the re-calibrated table composes its factors with the new ones
    again = _device(table, {3: 1.0, 5: 1.12 * 1.1, 7: 1.35}, {r: 1.0 for r in (128, 160, 192,
                                                                                224)})
    cal2 = design(new, pool, {128: 3, 160: 3, 192: 2, 224: 2})
    newer = recalibrated_overhead(new, [(a, again(a)) for a in cal2])
    ratio = newer["kernel_factors"]["5"] / newer["kernel_factors"].get("3", 1.0)
    assert ratio == pytest.approx(1.12 * 1.1, abs=0.04)


def test_recalibration_learns_that_larger_subnets_got_slower():
    """On another device every subnet's time grows as (q / 5 ms) ** 0.12 beyond the table's q
    (its caches), besides a drift c(r) and slower 7x7 blocks: ten designed subnets recover g,
    and random subnets none of them saw are then predicted within 2%, where the same fit
    without the exponent misses some by more than 4%. predict_genes applies the exponent too,
    and a second re-calibration on the same device keeps it."""
    table, drift_c = _drifting_table()
    kernel_device = _device(table, {3: 1.0, 5: 1.0, 7: 1.3}, drift_c)

    def measure(arch):
        q = kernel_device(arch)
        return q * (q / 5.0) ** 0.12

    rng = np.random.default_rng(4)
    pool = [SPACE.sample(rng, r) for r in (128, 160, 192, 224) for _ in range(20)]
    cal = design(table, pool, {128: 3, 160: 3, 192: 2, 224: 2})
    new = LatencyTable(table.meta, table.entries,
                       recalibrated_overhead(table, [(a, measure(a)) for a in cal]))
    assert new.overhead["size_exponent"]["g"] == pytest.approx(0.12, abs=0.02)
    held = [SPACE.sample(rng, r) for r in (128, 224) for _ in range(30)]
    truth = np.array([measure(a) for a in held])
    assert np.max(np.abs(new.predict_many(held) / truth - 1)) < 0.02
    genes = np.stack([SPACE.encode(a) for a in held])
    np.testing.assert_allclose(new.predict_genes(genes), new.predict_many(held))
    flat = {k: v for k, v in new.overhead.items() if k != "size_exponent"}
    without = LatencyTable(table.meta, table.entries, flat)  # the same fit, exponent dropped
    assert np.max(np.abs(without.predict_many(held) / truth - 1)) > 0.04
    again = recalibrated_overhead(new, [(a, measure(a)) for a in cal])
    assert again["size_exponent"]["g"] == pytest.approx(new.overhead["size_exponent"]["g"],
                                                        abs=0.02)
    newer = LatencyTable(table.meta, table.entries, again)
    assert np.max(np.abs(newer.predict_many(held) / truth - 1)) < 0.02
    # too few subnets for shape terms: no exponent, as without kernel terms
    assert "size_exponent" not in recalibrated_overhead(table, [(a, measure(a))
                                                                for a in cal[:5]])


def test_finalize_keeps_a_recalibrated_fit():
    """A re-calibrated table refits from its re-calibration subnets and base fit, not from
    calibration subnets it no longer has (resuming it must not wipe the fit)."""
    table = synthetic()
    base = {"per_resolution": {}, "all": {"scale": 1.0, "per_block_ms": 0.0, "offset_ms": 0.0}}
    table.overhead = dict(base)
    rng = np.random.default_rng(2)
    for role in ("recalibrate", "recalibrate", "recalibrate", "validate"):
        arch = SPACE.sample(rng, 224)
        table.networks.append({"role": role, "arch": arch.to_dict(),
                               "measured": {"median_ms": 1.25 * table.raw_sum(arch)}})
    table.meta["recalibrated"] = {"base_overhead": base}
    finalize(table)
    assert table.overhead["corrections"]["224"] == pytest.approx(1.25)
    assert table.validation["all"]["mape"] == pytest.approx(0, abs=1e-5)
    assert table.validation["held_out"]


def test_choices_are_checked():
    with pytest.raises(BadInput, match="--kernel 4 not in space"):
        Choices.of(SPACE, kernels=[4])
    with pytest.raises(BadInput, match="--resolution 100"):
        Choices.of(SPACE, resolutions=[100])
    c = Choices.of(SPACE, [224], [1.2], [5, 3], [6])
    arch = sample_arch(SPACE, c, np.random.default_rng(0), 224)
    assert arch.width_mult == 1.2 and {b.kernel for s in arch.stages for b in s} <= {3, 5}
