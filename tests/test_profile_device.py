"""The device kit end to end: bundle here, measure with export/profile_device.py in a Python
where ``import torch`` fails, import the table back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgessl.cost.latency import LatencyTable

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "export" / "profile_device.py"
TINY_ARGS = ["--resolution", "128", "--width-mult", "1.0", "--kernel", "3", "--expand", "3"]


def torchless_env(tmp_path: Path) -> dict:
    """PYTHONPATH with a ``torch`` (and ``edgessl``) that raise ImportError when imported."""
    block = tmp_path / "blockers"
    block.mkdir()
    for name in ("torch", "edgessl"):
        (block / f"{name}.py").write_text(f"raise ImportError('{name} is not allowed here')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(block)
    return env


def run_kit(bundle: Path, out: Path, env: dict, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(bundle), "--out", str(out), *extra],
                          env=env, capture_output=True, text=True, timeout=300)


def test_device_kit_without_torch(tmp_path, cli, monkeypatch):
    bundle = tmp_path / "kit"
    r = cli("profile", "--bundle", str(bundle), *TINY_ARGS, "--calibrate", "2", "--validate",
            "1", "--runs", "6", "--rounds", "2", "--warmup", "1", "--net-runs", "3", "--json")
    assert r.code == 0, r
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert json.loads(r.out)["entries"] == len(manifest["entries"]) == 25
    assert all((bundle / e["file"]).is_file() for e in manifest["entries"])
    assert len(manifest["networks"]) == 3 and (bundle / "edgessl_runtime" / "timer.py").is_file()

    env = torchless_env(tmp_path)
    check = subprocess.run([sys.executable, "-c", "import torch"], env=env,
                           capture_output=True, text=True)
    assert check.returncode != 0 and "not allowed" in check.stderr
    out = tmp_path / "device-table.json"
    done = run_kit(bundle, out, env)
    assert done.returncode == 0, done.stderr
    raw = json.loads(out.read_text())
    assert raw["complete"] and raw["backend"] == "onnxruntime-cpu" and raw["clock"] == "cpu"
    assert raw["backend_version"].startswith("onnxruntime ")
    assert len(raw["entries"]) == 25 and len(raw["networks"]) == 3
    assert raw["measured_with"] == "export/profile_device.py"

    again = run_kit(bundle, out, env)  # finished table: nothing left to measure
    assert again.returncode == 0 and json.loads(out.read_text())["entries"] == raw["entries"]
    clash = run_kit(bundle, out, env, "--threads", "2")
    assert clash.returncode == 2 and "threads=1" in clash.stderr

    monkeypatch.chdir(tmp_path)
    r = cli("profile", "--import", str(out), "--json")
    assert r.code == 0, r
    installed = tmp_path / "latency_tables" / "device-table.json"
    assert json.loads(r.out)["table"] == str(Path("latency_tables") / "device-table.json")
    table = LatencyTable.load(installed)
    assert table.overhead["per_resolution"] == {} and table.overhead["all"]["n"] == 2
    assert table.validation["all"]["n"] == 1
    assert (tmp_path / "latency_tables" / "device-table.png").stat().st_size > 1000
    arch_json = manifest["networks"][-1]["arch"]
    (tmp_path / "a.json").write_text(json.dumps(arch_json))
    r = cli("cost", "a.json", "--latency-table", str(installed), "--json")
    assert r.code == 0 and json.loads(r.out)["latency_ms"] > 0


def test_import_refuses_incomplete_or_foreign(tmp_path, cli):
    base = {"format": "edgessl-latency/1", "space": "mobilenet", "backend": "onnxruntime-cpu",
            "threads": 1, "batch": 1, "dtype": "fp32", "resolutions": [128],
            "choices": {"width_mults": [1.0], "kernels": [3], "expands": [3]},
            "complete": True, "entries": {"conv|x": {"median_ms": 0.1}}}
    p = tmp_path / "t.json"
    p.write_text(json.dumps(base))
    r = cli("profile", "--import", str(p))
    assert r.code == 2 and "lacks entry" in r.err
    p.write_text(json.dumps({**base, "complete": False}))
    r = cli("profile", "--import", str(p))
    assert r.code == 2 and "unfinished" in r.err
    p.write_text(json.dumps({**base, "space": "vit"}))
    r = cli("profile", "--import", str(p))
    assert r.code == 2 and "unknown space 'vit'" in r.err


def _bundle_copy(tmp_path: Path, manifest: dict | str) -> Path:
    """A bundle folder with the given manifest (a dict, or raw text) and the runtime copy."""
    from edgessl.profile.bundle import copy_runtime

    folder = tmp_path / "kit"
    folder.mkdir()
    copy_runtime(folder / "edgessl_runtime")
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (folder / "manifest.json").write_text(text)
    return folder


GOOD = {"format": "edgessl-bundle/1", "space": "mobilenet", "batch": 1, "dtype": "fp32",
        "resolutions": [128], "choices": {}, "timing": {"runs": 3, "rounds": 1, "warmup": 0,
                                                       "net_runs": 3},
        "entries": [], "networks": []}


@pytest.mark.parametrize("manifest, needle", [
    ({"format": "other/1"}, "format 'other/1'"),
    ("{not json", "manifest.json is not valid JSON (line 1"),
    ("[1, 2]", "expected a JSON object"),
    ({**GOOD, "batch": "one"}, "field 'batch' is missing or not a JSON int"),
    ({k: v for k, v in GOOD.items() if k != "entries"}, "field 'entries' is missing"),
    ({**GOOD, "timing": {"runs": 3}}, "timing.rounds is missing"),
    ({**GOOD, "entries": [{"file": "blocks/0000.onnx"}]}, "entries[0] needs a 'key'"),
    ({**GOOD, "entries": [{"key": "k", "file": "blocks/0000.onnx"}]},
     "blocks/0000.onnx is missing"),
    ({**GOOD, "networks": [{"role": "train", "arch": {}, "file": "n.onnx"}]},
     "networks[0] needs a 'role'"),
])
def test_kit_refuses_malformed_manifests(tmp_path, manifest, needle):
    folder = _bundle_copy(tmp_path, manifest)
    done = run_kit(folder, tmp_path / "o.json", torchless_env(tmp_path))
    assert done.returncode == 2, done
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert needle in done.stderr and not (tmp_path / "o.json").exists()


@pytest.mark.parametrize("old, needle", [("{oops", "is not valid JSON"),
                                         ('{"entries": []}', "not a latency table")])
def test_kit_refuses_a_malformed_out_file(tmp_path, old, needle):
    folder = _bundle_copy(tmp_path, GOOD)
    (tmp_path / "o.json").write_text(old)
    done = run_kit(folder, tmp_path / "o.json", torchless_env(tmp_path))
    assert done.returncode == 2 and needle in done.stderr and done.stderr.count("\n") == 1
    assert (tmp_path / "o.json").read_text() == old  # nothing already written is lost


@pytest.mark.parametrize("bad", ["nothing-here", "not-a-bundle"])
def test_kit_refuses_non_bundle(tmp_path, bad):
    folder = tmp_path / bad
    if bad == "not-a-bundle":
        folder.mkdir()
        (folder / "manifest.json").write_text(json.dumps({"format": "other/1"}))
    done = run_kit(folder, tmp_path / "o.json", torchless_env(tmp_path))
    assert done.returncode == 2 and ("no manifest.json" in done.stderr
                                     or "no edgessl_runtime/" in done.stderr)


def _device_table(tmp_path: Path) -> Path:
    """A finished device table of the tiny sub-space (every entry present, made-up times)."""
    from edgessl.profile.blocks import Choices, enumerate_specs
    from edgessl.spaces import get_space

    space = get_space("mobilenet")
    keys = enumerate_specs(space, Choices.of(space, [128], [1.0], [3], [3]))
    base = {"format": "edgessl-latency/1", "space": "mobilenet", "backend": "onnxruntime-cpu",
            "threads": 1, "batch": 1, "dtype": "fp32", "resolutions": [128],
            "choices": {"width_mults": [1.0], "kernels": [3], "expands": [3]},
            "complete": True, "entries": {k: {"median_ms": 0.1} for k in keys}}
    p = tmp_path / "t.json"
    p.write_text(json.dumps(base))
    return p


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_import_refuses_a_read_only_latency_tables(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "latency_tables").mkdir()
    (tmp_path / "latency_tables").chmod(0o555)
    try:
        r = cli("profile", "--import", str(_device_table(tmp_path)))
    finally:
        (tmp_path / "latency_tables").chmod(0o755)
    assert r.code == 2 and r.err.count("\n") == 1
    assert "cannot install the table in latency_tables" in r.err


def test_import_turns_a_failed_install_into_one_line(tmp_path, cli, monkeypatch):
    """Where the folder refuses the write itself (read-only mount; for root, whom permission
    bits do not stop), the OSError becomes exit 2 with one line, and nothing is left behind."""
    import tempfile

    monkeypatch.chdir(tmp_path)
    path = _device_table(tmp_path)

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    r = cli("profile", "--import", str(path))
    assert r.code == 2 and r.err.count("\n") == 1, r
    assert "cannot install the table in latency_tables: Read-only file system" in r.err
    assert not (tmp_path / "latency_tables" / "t.json").exists()
