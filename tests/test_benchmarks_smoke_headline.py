"""``--preset smoke`` of the headline benchmark (searched vs handcrafted networks) runs end to
end through the CLI and writes every network's accuracy, costs and latency."""

from __future__ import annotations

import json

from test_benchmarks_smoke import _run, supernet  # noqa: F401 - fixture


def test_headline_smoke_writes_every_network_with_costs_and_latency(supernet, tmp_path):  # noqa: F811
    work = tmp_path / "headline"
    r = _run("headline.py", "--preset", "smoke", "--supernet", supernet, "--work", work,
             in_process=True)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((work / "headline.json").read_text())
    text = json.dumps(result)
    for key in ("knn", "linear", "mflops_224", "mflops_train_res", "params_m", "latency_ms"):
        assert f'"{key}' in text, key
    assert "mobilenet_v3_small" in text and "searched" in text
    # the printed section starts with its heading (write_section replaces it) and states the
    # claim per handcrafted network from the rows: searched (retrained) minus it, in points
    assert r.stdout.lstrip().startswith("## Headline") or "\n## Headline" in r.stdout
    rows = {row["network"]: row for row in result["rows"]}
    ours, theirs = rows["searched (retrained)"], rows["mobilenet_v3_small"]
    d_knn = 100 * (ours["knn"] - theirs["knn"])
    d_lin = 100 * (ours["linear"] - theirs["linear"])
    assert f"- vs mobilenet_v3_small: kNN {d_knn:+.2f}, linear {d_lin:+.2f} points (" in r.stdout
