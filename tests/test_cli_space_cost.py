"""`edgessl space` and `edgessl cost` through the CLI, bad input included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgessl.spaces import get_space


def test_space_show_json_brackets_600_mflops_at_224(cli):
    r = cli("space", "show", "--space", "mobilenet", "--json")
    assert r.code == 0, r
    info = json.loads(r.out)
    row = next(c for c in info["cost"] if c["resolution"] == 224)
    assert row["min_mflops"] < 600 < row["max_mflops"]
    assert info["kernels"] == [3, 5, 7] and info["n_architectures"] > 10**18


def test_space_show_table_for_resnet(cli):
    r = cli("space", "show", "--space", "resnet")
    assert r.code == 0 and "4089.2" in r.out  # largest member is ResNet50


def test_space_sample_is_seeded_and_valid(cli):
    a = cli("space", "sample", "--space", "resnet", "--n", "5", "--seed", "3")
    b = cli("space", "sample", "--space", "resnet", "--n", "5", "--seed", "3")
    c = cli("space", "sample", "--space", "resnet", "--n", "5", "--seed", "4")
    assert a.code == 0 and a.out == b.out != c.out
    lines = a.out.strip().splitlines()
    assert len(lines) == 5 and all(json.loads(x)["space"] == "resnet" for x in lines)
    r = cli("space", "sample", "--n", "3", "--resolution", "160")
    assert {json.loads(x)["resolution"] for x in r.out.split()} == {160}


def test_cost_stdin_lines_in_order_and_exact(cli):
    sample = cli("space", "sample", "--n", "3", "--seed", "9").out
    r = cli("cost", "-", "--json", stdin=sample)
    assert r.code == 0, r
    rows = [json.loads(x) for x in r.out.strip().splitlines()]
    space = get_space("mobilenet")
    from edgessl.arch import Arch

    for line, row in zip(sample.split(), rows, strict=True):
        arch = Arch.from_json(line)
        assert row["arch"] == arch.to_dict()
        assert row["mflops"] == pytest.approx(space.mflops(arch))
    r = cli("cost", "-", "--exact", "--json", stdin=sample.split()[0])
    row = json.loads(r.out)
    assert row["fvcore_mflops"] == pytest.approx(row["mflops"], rel=1e-3)


def test_cost_of_arch_file_and_baseline(cli, tmp_path):
    arch = get_space("resnet").smallest(128)
    arch.save(tmp_path / "a.json")
    r = cli("cost", str(tmp_path / "a.json"), "--json")
    assert r.code == 0 and json.loads(r.out)["params"] == get_space("resnet").cost(arch)[1]
    r = cli("cost", "mobilenet_v2", "--json")
    assert abs(json.loads(r.out)["mflops"] - 300.8) < 1.5
    r = cli("cost", "resnet18")
    assert r.code == 0 and "1814.07" in r.out


def test_cost_with_an_fp32_and_int8_table_of_one_device_predicts_the_int8_speedup(cli):
    from edgessl.cost.latency import LatencyTable

    folder = Path(__file__).parents[1] / "latency_tables"
    tables = {f"{cpu}-{dtype}": str(folder / f"mobilenet-onnxruntime-cpu-{cpu}-t1-b1-{dtype}.json")
              for cpu, dtype in (("epyc", "fp32"), ("epyc", "int8"), ("xeon", "int8"))}
    sample = cli("space", "sample", "--n", "2", "--seed", "4", "--resolution", "224").out
    r = cli("cost", "-", "--json", "--latency-table", tables["epyc-fp32"],
            "--latency-table", tables["epyc-int8"], stdin=sample)
    assert r.code == 0, r
    from edgessl.arch import Arch

    for line, row in zip(sample.split(), map(json.loads, r.out.strip().splitlines()),
                         strict=True):
        arch = Arch.from_json(line)
        fp, q = (LatencyTable.load(tables[k]).predict(arch) for k in ("epyc-fp32", "epyc-int8"))
        assert row["latency_ms"] == pytest.approx(fp)  # the first table's, as with one table
        assert list(row["latency_ms_by_table"].values()) == pytest.approx([fp, q])
        assert row["int8_speedup"] == pytest.approx(fp / q)
    # an INT8 table of another device: both predictions, no speedup
    r = cli("cost", "-", "--json", "--latency-table", tables["epyc-fp32"],
            "--latency-table", tables["xeon-int8"], stdin=sample.split()[0])
    row = json.loads(r.out)
    assert len(row["latency_ms_by_table"]) == 2 and "int8_speedup" not in row
    r = cli("cost", "-", "--latency-table", tables["epyc-fp32"], "--latency-table",
            tables["epyc-int8"], stdin=sample.split()[0])
    speedup = json.loads(cli("cost", "-", "--json", "--latency-table", tables["epyc-fp32"],
                             "--latency-table", tables["epyc-int8"],
                             stdin=sample.split()[0]).out)["int8_speedup"]
    assert f"{speedup:.2f}x" in r.out and "[2] " in r.out  # the speedup column, the legend


def _bad(field_edit):
    data = get_space("mobilenet").smallest(224).to_dict()
    field_edit(data)
    return json.dumps(data)


@pytest.mark.parametrize("text, names", [
    (_bad(lambda d: d.update(extra=1)), "'extra'"),
    (_bad(lambda d: d["stages"][0][0].update(kernel=4)), "kernel 4"),
    (_bad(lambda d: d["stages"][0].extend(d["stages"][0] * 4)), "is 10"),
    (_bad(lambda d: d.update(resolution=225)), "resolution 225"),
    (_bad(lambda d: d.update(format="edgessl-arch/0")), "'edgessl-arch/0'"),
    ("this is not json", "not valid JSON"),
])
def test_bad_arch_input_exits_2_with_one_line(cli, tmp_path, text, names):
    for args, stdin in ((["-"], text), ([str(tmp_path / "bad.json")], "")):
        (tmp_path / "bad.json").write_text(text)
        r = cli("cost", *args, stdin=stdin)
        assert r.code == 2, r
        assert names in r.err and len(r.err.strip().splitlines()) == 1
        assert "Traceback" not in r.err and r.out == ""


@pytest.mark.parametrize("args, names", [
    (["cost", "/no/such/arch.json"], "/no/such/arch.json"),
    (["cost", "resnet51"], "resnet51"),
    (["space", "show", "--space", "vit"], "'vit'"),
    (["space", "sample", "--n", "-1"], "--n -1"),
    (["space", "sample", "--resolution", "100"], "resolution 100"),
])
def test_bad_cli_values_exit_2(cli, args, names):
    r = cli(*args)
    assert r.code == 2 and names in r.err and len(r.err.strip().splitlines()) == 1, r


TABLE = str(Path(__file__).parents[1] / "latency_tables"
            / "mobilenet-onnxruntime-cpu-xeon-t1-b1-fp32.json")


def _junk_ckpt(tmp_path):
    (tmp_path / "junk.ckpt").write_text("a text file, not a checkpoint")
    return tmp_path / "junk.ckpt"


@pytest.mark.parametrize("args, stdin, names", [
    (["space", "sample", "--seed", "-1"], "", "--seed -1"),
    (["cost", "resnet50", "--resolution", "0"], "", "resolution 0"),
    (["cost", "{tmp}"], "", "is a folder"),
    (["cost", "{mob}", "--latency-table", "{tmp}"], "", "is a folder"),
    (["cost", "{res}", "--latency-table", TABLE], "", "space 'resnet'"),
    (["cost", "resnet50", "--latency-table", TABLE], "", "'resnet50' is a baseline"),
    (["cost", "-"], "\n\n", "no arch JSON lines"),
    (["cost", "-", "--resolution", "7"], "{mob_text}", "resolution 7"),
])
def test_more_bad_cli_values_exit_2(cli, tmp_path, args, stdin, names):
    mob = get_space("mobilenet").largest(224)
    res = get_space("resnet").smallest(224)
    mob.save(tmp_path / "mob.json")
    res.save(tmp_path / "res.json")
    subs = {"{tmp}": str(tmp_path), "{mob}": str(tmp_path / "mob.json"),
            "{res}": str(tmp_path / "res.json"), "{mob_text}": mob.to_json()}
    r = cli(*[subs.get(a, a) for a in args], stdin=subs.get(stdin, stdin))
    assert r.code == 2 and names in r.err, r
    assert r.err.startswith("error: ") and r.err.count("\n") == 1 and r.out == "", r


@pytest.mark.parametrize("command, example", [
    ([], "edgessl search --budget-mflops 600"),
    (["space"], "edgessl space show --space mobilenet"),
    (["space", "show"], "edgessl space show --space resnet --json"),
    (["space", "sample"], "edgessl space sample --n 3 --seed 1 --resolution 224 > archs.jsonl"),
    (["cost"], "edgessl space sample --n 100 | edgessl cost - --json"),
    (["profile"], "edgessl profile --import table.json"),
    (["export"], "edgessl export mobilenet_v2 --onnx --dynamic-batch --out exported_mbv2/"),
    (["bench"], "edgessl bench mobilenet_v2 --against resnet18 --runs 20 --json"),
    (["search"], "--latency-table latency_tables/my-cpu.json --out results/fm"),
])
def test_help_shows_examples_one_per_line(cli, command, example):
    """Examples are code blocks: each stays on its own line, not re-wrapped into prose."""
    r = cli(*command, "--help")
    assert r.code == 0 and "Example" in r.out
    assert example in [line.strip() for line in r.out.splitlines()], r.out
