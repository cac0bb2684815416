"""Fuzz: corrupted arch JSON, checkpoints (truncated, missing keys, wrong types), latency
tables, device-kit bundle manifests and metrics CSVs, from a seeded generator. Every case must
exit 2 with one line on stderr and no traceback (the CLI runs in-process; the device kit is
called through its ``main``). 240 cases in the default suite.
"""

from __future__ import annotations

import importlib.util
import io
import json
import random
import shutil
from contextlib import redirect_stderr
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train_fixtures import trained_run  # noqa: F401 - fixture

from edgessl.checkpoint import MODEL_FORMAT, load_checkpoint, save_checkpoint
from edgessl.models import build_model
from edgessl.spaces import get_space

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "latency_tables" / "mobilenet-onnxruntime-cpu-xeon-t1-b1-fp32.json"
JUNK = ("x", None, [], {}, -7, 10**12, 0.5, True)  # values of the wrong type or range


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESSL_CACHE", str(tmp_path / "cache"))


def refused(r, case) -> None:
    assert r.code == 2, (case, r)
    assert r.err.startswith("error: ") and r.err.count("\n") == 1, (case, r.err)
    assert "Traceback" not in r.err and r.out == "", (case, r)


def truncations(data: bytes, rng: random.Random, n: int) -> list[bytes]:
    """``n`` strict prefixes of ``data`` (a JSON object or zip: never valid when cut)."""
    return [data[:rng.randrange(0, len(data) - 1)] for _ in range(n)]


# ---- arch JSON -------------------------------------------------------------------------
def arch_cases(rng: random.Random) -> list[tuple[str, bytes]]:
    base = get_space("mobilenet").sample(np.random.default_rng(0), 160).to_dict()
    text = json.dumps(base).encode()
    cases = [("truncated", t) for t in truncations(text, rng, 12)]
    cases += [("not json", b"\xff\xfe garbage"), ("empty", b""), ("a list", b"[1, 2]"),
              ("a string", b'"mobilenet"'), ("a number", b"42")]
    for key in base:
        cases.append((f"no {key}", json.dumps({k: v for k, v in base.items()
                                               if k != key}).encode()))
    wrong = {"format": ["edgessl-arch/9", 1], "space": ["nospace", 5, None],
             "resolution": ["x", 12.5, None, -7, 99999], "width_mult": ["x", None, 0.7, -1],
             "stages": ["x", {}, [], [[]], [["x"]]]}
    for key, values in wrong.items():
        for v in values:
            cases.append((f"{key}={v!r}", json.dumps({**base, key: v}).encode()))
    for field, values in (("kernel", [4, "3", None, 0]), ("expand", [5, "x", None])):
        for v in values:
            bad = json.loads(text)
            stage = rng.randrange(len(bad["stages"]))
            bad["stages"][stage][0][field] = v
            cases.append((f"block {field}={v!r}", json.dumps(bad).encode()))
    extra = json.loads(text)
    extra["stages"][0][0]["foo"] = 1
    return [*cases, ("block extra field", json.dumps(extra).encode()),
            ("extra field", json.dumps({**base, "colour": "red"}).encode())]


def test_corrupted_arch_json(cli, tmp_path):
    cases = arch_cases(random.Random(1))
    assert len(cases) >= 50
    for i, (case, data) in enumerate(cases):
        path = tmp_path / f"arch{i}.json"
        path.write_bytes(data)
        refused(cli("cost", path), case)


# ---- checkpoints -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_payload() -> dict:
    arch = get_space("resnet18").smallest()
    return {"format": MODEL_FORMAT, "model": {"kind": "arch", "arch": arch.to_dict()},
            "state_dict": build_model(arch).state_dict(), "meta": {"train_resolution": 32}}


TRAIN_TRUNCATIONS = 15
NETWORK_KEYS = ("format", "kind", "space", "backbone", "resolution")  # what search reads too
OPTIONAL_KEYS = ("meta", "resolution", "epoch", "model")  # a supernet run has model None


def checkpoint_cases(model: dict, train: dict) -> list[tuple[str, dict]]:
    """(case, payload) pairs that are invalid for the command reading them: model files for
    eval, training runs for the resume path (and, where a network key is broken, search)."""
    cases = []
    for name, payload in (("model", model), ("train", train)):
        for key in payload:
            if key not in OPTIONAL_KEYS or (name == "model" and key == "model"):
                cases.append((f"{name} without {key}", {k: v for k, v in payload.items()
                                                        if k != key}))
    for key, values in (("state_dict", ["x", [], {"w": 3}, {"conv.weight": torch.ones(3)}]),
                        ("model", ["x", {}, {"kind": "arch", "arch": "x"},
                                   {"kind": "baseline", "name": 5},
                                   {"kind": "baseline", "name": "resnet999"}, {"kind": "zzz"}]),
                        ("meta", ["x", [], {"train_resolution": "big"},
                                  {"train_resolution": -4}]),
                        ("format", ["edgessl-model/9", "edgessl-", 7])):
        cases += [(f"model {key}={str(v)[:30]}", {**model, key: v}) for v in values]
    for key, values in (("kind", ["x", 5, None]), ("space", [5, "nospace", None]),
                        ("backbone", ["x", {"w": 1.5}, {"stem.weight": torch.ones(2)}]),
                        ("step", ["x", 1.5, None, -3]), ("config", ["x", [], {"data": 5}]),
                        ("optimizer", ["x", {"state": 5}, {}]), ("rng", ["x", {}, {"torch": 1}]),
                        ("scheduler", ["x", {}, {"last_epoch": "x", "base_lrs": 1}]),
                        ("objective", [[], {"nope": torch.ones(1)}]),
                        ("resolution", ["x", -1])):
        cases += [(f"train {key}={str(v)[:30]}", {**train, key: v}) for v in values]
    return cases


def test_corrupted_checkpoints(cli, tmp_path, model_payload, trained_run):  # noqa: F811
    train = load_checkpoint(trained_run / "last.ckpt")
    cases = checkpoint_cases(model_payload, train)
    rng = random.Random(2)
    blob = io.BytesIO()
    torch.save(model_payload, blob)
    truncated = truncations(blob.getvalue(), rng, 30)
    assert len(cases) + len(truncated) + TRAIN_TRUNCATIONS >= 100
    run = tmp_path / "RUN"
    shutil.copytree(trained_run, run)
    for case, payload in cases:
        if str(payload.get("format", "")).startswith("edgessl-"):
            save_checkpoint(run / "last.ckpt", payload)
        else:
            torch.save(payload, run / "last.ckpt")
        if case.startswith("model"):
            refused(cli("eval", run / "last.ckpt", "--data", "digits", "--bank-size", "50",
                        "--test-size", "20", "--device", "cpu"), case)
        else:  # a training checkpoint read by the resume path
            refused(cli("train", "--out", run, "--resume", "--workers", "0", "--device",
                        "cpu"), case)
            if case.split()[1].split("=")[0] in NETWORK_KEYS:  # and by search's reader
                refused(cli("search", "--supernet", run / "last.ckpt", "--out",
                            tmp_path / "S", "--device", "cpu"), case)
    for data in truncated:
        (tmp_path / "t.ckpt").write_bytes(data)
        refused(cli("eval", tmp_path / "t.ckpt", "--data", "digits"), "truncated")
    for data in truncations((trained_run / "last.ckpt").read_bytes(), rng, TRAIN_TRUNCATIONS):
        (run / "last.ckpt").write_bytes(data)
        refused(cli("train", "--out", run, "--resume"), "truncated run")


# ---- latency tables --------------------------------------------------------------------
def table_cases(rng: random.Random) -> list[tuple[str, bytes]]:
    text = TABLE.read_bytes()
    base = json.loads(text)
    cases = [("truncated", t) for t in truncations(text, rng, 10)]
    cases += [("not json", b"\x00\xffnope"), ("a list", b"[]"), ("empty", b"")]
    for key in ("format", "space", "entries", "overhead", "resolutions"):
        cases.append((f"no {key}", json.dumps({k: v for k, v in base.items()
                                               if k != key}).encode()))
    for key, values in (("format", ["edgessl-latency/9", 3]), ("space", ["resnet", 5]),
                        ("entries", ["x", [], {}]), ("overhead", ["x", []])):
        cases += [(f"{key}={v!r}", json.dumps({**base, key: v}).encode()) for v in values]
    keys = sorted(base["entries"])
    for v in ("x", None, -1):
        bad = json.loads(text)
        bad["entries"][rng.choice(keys)]["median_ms"] = v
        cases.append((f"median_ms={v!r}", json.dumps(bad).encode()))
    fits = json.loads(text)
    for fit in fits["overhead"]["per_resolution"].values():
        fit.pop("scale", None)
        fit.pop("fit", None)
    fits["overhead"]["all"].pop("scale", None)
    return [*cases, ("overhead without fit/scale", json.dumps(fits).encode())]


def test_corrupted_latency_tables(cli, tmp_path):
    arch = tmp_path / "a.json"
    get_space("mobilenet").smallest(128).save(arch)
    cases = table_cases(random.Random(3))
    assert len(cases) >= 30
    failures = []
    for i, (case, data) in enumerate(cases):
        path = tmp_path / f"t{i}.json"
        path.write_bytes(data)
        try:
            r = cli("cost", arch, "--latency-table", path)
        except Exception as exc:  # what a user would see as a traceback
            failures.append((case, f"traceback: {type(exc).__name__}: {exc}"))
            continue
        if not (r.code == 2 and r.err.count("\n") == 1 and "Traceback" not in r.err):
            failures.append((case, r.code, r.err[-200:]))
    assert not failures, failures


# ---- device-kit bundle manifests -------------------------------------------------------
def _kit():
    spec = importlib.util.spec_from_file_location("profile_device",
                                                  ROOT / "export" / "profile_device.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def manifest_cases(rng: random.Random) -> list[tuple[str, bytes]]:
    base = {"format": "edgessl-bundle/1", "space": "mobilenet", "batch": 1, "dtype": "fp32",
            "resolutions": [128], "choices": {"kernel": [3]},
            "timing": {"runs": 5, "rounds": 1, "warmup": 1, "net_runs": 3},
            "entries": [{"key": "conv|k=3", "file": "blocks/0.onnx"}],
            "networks": [{"role": "validate", "arch": {"space": "mobilenet"},
                          "file": "nets/0.onnx"}]}
    text = json.dumps(base).encode()
    cases = [("truncated", t) for t in truncations(text, rng, 6)]
    cases += [("not json", b"\xff"), ("a list", b"[]")]
    cases += [(f"no {k}", json.dumps({x: v for x, v in base.items() if x != k}).encode())
              for k in base]
    for key in ("batch", "timing", "entries", "networks", "format"):
        cases += [(f"{key}={v!r}", json.dumps({**base, key: v}).encode())
                  for v in rng.sample(JUNK, 2)]
    cases.append(("timing.runs='x'", json.dumps({**base, "timing": {**base["timing"],
                                                                     "runs": "x"}}).encode()))
    cases.append(("entry without file", json.dumps({**base, "entries": [{"key": "k"}]}).encode()))
    cases.append(("network role", json.dumps({**base, "networks": [{**base["networks"][0],
                                                                     "role": "x"}]}).encode()))
    return cases


def test_corrupted_bundle_manifests(tmp_path):
    kit = _kit()
    cases = manifest_cases(random.Random(4))
    assert len(cases) >= 25
    failures = []
    for i, (case, data) in enumerate(cases):
        bundle = tmp_path / f"b{i}"
        bundle.mkdir()
        (bundle / "manifest.json").write_bytes(data)
        err, code = io.StringIO(), None
        try:
            with redirect_stderr(err):
                kit.main([str(bundle), "--out", str(tmp_path / f"out{i}.json")])
        except SystemExit as exc:
            code = exc.code
        except Exception as exc:  # what a user would see as a traceback
            code = f"traceback: {type(exc).__name__}: {exc}"
        text = err.getvalue()
        if not (code == 2 and text.count("\n") == 1):
            failures.append((case, code, text[-200:]))
    assert not failures, failures


# ---- metrics.csv on resume -------------------------------------------------------------
def metrics_cases(rng: random.Random) -> list[tuple[str, bytes]]:
    cases = []
    for v in ("abc", "1.5", "-1", "", " ", "2e3", "0x10", "NaN"):
        cases.append((f"step={v!r}", f"step,loss\n1,0.5\n{v},0.4\n".encode()))
    for header in ("loss,lr", "Step,loss", "steps,loss", "loss"):
        cases.append((f"header {header}", f"{header}\n1,0.5\n".encode()))
    for _ in range(12):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(8, 200)))
        cases.append(("random bytes", b"step,loss\n\xff" + junk))
    cases.append(("utf-16", "step,loss\n1,0.5\n".encode("utf-16")))
    return cases


def test_corrupted_metrics_csv_on_resume(cli, tmp_path, trained_run):  # noqa: F811
    run = tmp_path / "RUN"
    shutil.copytree(trained_run, run)
    ckpt = (run / "last.ckpt").read_bytes()
    cases = metrics_cases(random.Random(5))
    assert len(cases) >= 25
    for case, data in cases:
        (run / "metrics.csv").write_bytes(data)
        refused(cli("train", "--out", run, "--resume", "--workers", "0"), case)
        assert (run / "metrics.csv").read_bytes() == data and \
            (run / "last.ckpt").read_bytes() == ckpt, case


def test_the_default_suite_runs_at_least_200_cases(model_payload, trained_run):  # noqa: F811
    train = load_checkpoint(trained_run / "last.ckpt")
    n = (len(arch_cases(random.Random(1))) + len(checkpoint_cases(model_payload, train)) + 30
         + TRAIN_TRUNCATIONS
         + len(table_cases(random.Random(3))) + len(manifest_cases(random.Random(4)))
         + len(metrics_cases(random.Random(5))))
    assert n >= 200, n
