"""The whole product through the CLI on tiny inputs: train -> search -> eval -> export -> bench."""

from __future__ import annotations

import json

import onnx
from conftest import library_eval


def test_train_search_export_bench(cli, tmp_path):
    run = tmp_path / "run"
    r = cli("train", "--data", "digits", "--ssl", "simclr", "--subset", "64", "--max-steps", "2",
            "--batch-size", "16", "--resolution", "32", "--epochs", "1", "--out", run, "--json")
    assert r.code == 0, r
    found = tmp_path / "found"
    r = cli("search", "--supernet", run / "last.ckpt", "--budget-mflops", "350",
            "--population", "6", "--generations", "2", "--proxy-bank", "60", "--proxy-val", "30",
            "--device", "cpu", "--out", found, "--json")
    assert r.code == 0, r
    best = json.loads(r.out)["best"]
    assert best["mflops"] <= 350
    r = cli("eval", found / "best.ckpt", "--data", "digits", "--protocol", "knn", "--json")
    assert r.code == 0, r
    assert json.loads(r.out)["knn"] == library_eval(found / "best.ckpt", "digits")["knn"]
    exported = tmp_path / "onnx"
    r = cli("export", found, "--onnx", "--resolution", "64", "--out", exported, "--json")
    assert r.code == 0, r
    model = onnx.load(exported / "model.onnx")
    onnx.checker.check_model(model)
    meta = json.loads((exported / "export.json").read_text())
    assert meta["source"]["kind"] == "result" and meta["parity"]["model.onnx"]["passed"]
    assert meta["source"]["model"]["arch"] == best["arch"]
    r = cli("bench", exported / "model.onnx", "--against", "mobilenet_v3_small", "--runs", "5",
            "--resolution", "64", "--json")
    assert r.code == 0, r
    rows = json.loads(r.out)["results"]
    assert len(rows) == 2 and rows[1]["model"] == "mobilenet_v3_small"
    assert all(0 < row["median_ms"] <= row["p90_ms"] for row in rows)
