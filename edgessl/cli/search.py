"""``edgessl search``: budgeted self-supervised architecture search."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from edgessl.cli.app import app, console, print_json
from edgessl.cli.common import DeviceOpt, JsonOpt, SeedOpt
from edgessl.cli.progress import ProgressBar

if TYPE_CHECKING:  # the search stack (torch, scipy) is imported when a search runs, not for --help
    from edgessl.search import SearchConfig


@app.command("search")
def search(
    budget_mflops: Annotated[float | None, typer.Option(
        "--budget-mflops", help="Max MFLOPs at the deployment resolution.")] = 600.0,
    latency_ms: Annotated[float | None, typer.Option(
        "--latency-ms", help="Max predicted latency (needs --latency-table).")] = None,
    latency_table: Annotated[str | None, typer.Option(
        "--latency-table", help="Latency table JSON (edgessl profile).")] = None,
    max_params: Annotated[float | None, typer.Option(
        "--max-params", help="Max parameters, in millions.")] = None,
    supernet: Annotated[str | None, typer.Option(
        "--supernet", help="Supernet checkpoint (edgessl train); default: the built-in one.")
    ] = None,
    data: Annotated[list[str] | None, typer.Option(
        "--data", help="digits, fashion-mnist or an image folder (labels: kNN proxy; "
                       "none: label-free proxy); default: fashion-mnist-sample for the "
                       "shipped supernet, else the supernet's training data. Repeat it to "
                       "search once "
                       "per labelled set and write the cross-set matrix (cross.csv/.png).")
    ] = None,
    val_data: Annotated[str | None, typer.Option(
        "--val-data", help="The validation folder of --data, if not DATA/val: --data is then "
                           "wholly training images (the proxy holds out part of them).")
    ] = None,
    objectives: Annotated[str, typer.Option(
        "--objectives", help="Comma list from accuracy, mflops, latency.")] = "accuracy,mflops",
    population: Annotated[int, typer.Option("--population", help="NSGA-II population.")] = 16,
    generations: Annotated[int, typer.Option("--generations", help="Generations.")] = 6,
    proxy_bank: Annotated[int, typer.Option(
        "--proxy-bank", help="Training images in the kNN bank (speed vs fidelity).")] = 500,
    proxy_val: Annotated[int, typer.Option(
        "--proxy-val", help="Held-out training images scored per candidate.")] = 300,
    refine: Annotated[int, typer.Option(
        "--refine", help="After the evolution, re-score this many best candidates by kNN "
                         "leave-one-out over --refine-images training images and pick the best "
                         "of them by that score (0: pick by the screening score).")] = 8,
    refine_images: Annotated[int, typer.Option(
        "--refine-images", help="Labelled training images the refine step scores on (all "
                                "of --data's training split if fewer).")] = 5000,
    resolution: Annotated[int, typer.Option(
        "--resolution", help="Deployment resolution the budget applies at.")] = 224,
    proxy_resolution: Annotated[int | None, typer.Option(
        "--proxy-resolution", help="Scoring resolution (default: the supernet's).")] = None,
    held_out: Annotated[bool, typer.Option(
        "--held-out/--no-held-out",
        help="After the search, report the pick's kNN on the data's test (val) split: "
             "reported only, never used to choose.")] = True,
    save_pareto: Annotated[bool, typer.Option(
        "--save-pareto", help="Also write pareto/NN.ckpt: every Pareto member as a standalone "
                              "checkpoint (inherited weights) for export and bench.")] = False,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    out: Annotated[str, typer.Option("--out", help="Output folder.")] = "results/search",
    json: JsonOpt = False,
) -> None:
    """Find the most accurate sub-network under a FLOPs / latency / params budget.

    Example:

    ```
    edgessl search --budget-mflops 600
    edgessl search --supernet runs/fm/last.ckpt --data fashion-mnist \\
        --budget-mflops 300 --latency-ms 20 \\
        --latency-table latency_tables/my-cpu.json --out results/fm
    torchrun --nproc-per-node 4 -m edgessl search ...   # sharded
    edgessl search --data digits --data fashion-mnist --data data/fm-footwear \\
        --budget-mflops 400 --out results/per-set     # one search per set + cross.csv
    edgessl search --latency-table T-int8.json --latency-ms 12 --save-pareto --out r8
    edgessl export r8/pareto/01.ckpt --onnx --int8 --out exported01
    ```

    Writes best.arch.json, best.ckpt, pareto.json/.csv/.png, candidates.csv and report.md
    (with --save-pareto also pareto/NN.ckpt) into --out (with several --data: one such folder
    per set, plus cross.csv, cross.json, cross.png and report.md).
    """
    from edgessl.search import SearchConfig
    from edgessl.search.run import SearchSession

    sets = data or [None]
    cfg = SearchConfig(out=out, max_mflops=budget_mflops, max_latency_ms=latency_ms,
                       max_mparams=max_params, latency_table=latency_table, supernet=supernet,
                       data=sets[0], objectives=tuple(o.strip() for o in objectives.split(",")
                                                   if o.strip()),
                       population=population, generations=generations, seed=seed,
                       resolution=resolution, proxy_resolution=proxy_resolution, device=device,
                       bank=proxy_bank, val=proxy_val, refine=refine,
                       refine_images=refine_images, val_data=val_data,
                       held_out=held_out, save_pareto=save_pareto)
    if len(sets) > 1:
        _search_scenarios(cfg, sets, json)
        return
    session = SearchSession(cfg)
    quiet = json or not session.env.main  # under torchrun only rank 0 reports
    with ProgressBar("search", quiet=quiet) as bar:
        bar.update(0, generations, "sampling")

        def update(p: dict) -> None:
            if "refine" in p:
                bar.update(generations, generations,
                           f"refining {p['refine'] + 1}/{p['refine_total']} best")
                return
            best = p["best"]
            status = (f"{p['evaluated']} scored; best {best.score:.3f} @ {best.mflops:.0f} MFLOPs"
                      if best else f"{p['evaluated']} scored")
            bar.update(p["generation"], generations, status)

        result = session.run(update)
    if session.env.main:
        _report(result, out, json)
    if result.interrupted:
        raise typer.Exit(130)


def _report(result, out: str, json: bool) -> None:
    summary = {"out": out, "interrupted": result.interrupted,
               "evaluated": len(result.candidates), "pareto_size": len(result.pareto),
               "data": result.info.get("data"), "proxy": result.info.get("proxy"),
               "held_out": result.info.get("held_out"),
               "best": None if result.best is None else {
                   **result.best.row(), "arch": result.best.arch.to_dict()}}
    if json:
        print_json(summary)
    elif result.best is not None:
        b = result.best
        lat = "" if b.latency_ms is None else f", {b.latency_ms:.3f} ms predicted"
        from edgessl.search.results import PROXY_LABELS

        what = PROXY_LABELS.get(result.info["proxy"], result.info["proxy"])
        refine = result.info.get("refine")
        refined = ("" if b.refined is None else
                   f"; refined {b.refined:.4f} (leave-one-out on {refine['images']} images, "
                   f"best of the top {refine['top']})")
        console.print(f"best: {b.arch}\n  proxy ({what}) {b.score:.4f}{refined} on "
                      f"{result.info['data']}, {b.mflops:.1f} MFLOPs, {b.mparams:.2f} M "
                      f"params{lat}")
        held = result.info.get("held_out")
        if held:
            console.print(f"  held out: {100 * held['knn']:.2f}% kNN on {held['test_size']} "
                          "test images the search never saw")
        console.print(f"wrote {out}/best.arch.json, best.ckpt, pareto.json/.csv/.png, "
                      "report.md")


def _search_scenarios(cfg: SearchConfig, sets: list[str], json: bool) -> None:
    """One search per set (edgessl.search.scenarios), one progress bar over all of them."""
    from edgessl.search.scenarios import ScenarioSearch

    search = ScenarioSearch(cfg, sets)
    total = cfg.generations * len(sets)
    with ProgressBar("search", quiet=json) as bar:
        bar.update(0, total, "sampling")

        def update(p: dict) -> None:
            bar.update(p["index"] * cfg.generations + p["generation"], total,
                       f"{p['scenario']} ({p['index'] + 1}/{p['scenarios']}): " + (
                           f"refining {p['refine'] + 1}/{p['refine_total']} best" if "refine" in p
                           else f"gen {p['generation']}/{p['generations']}, "
                                f"{p['evaluated']} scored"))

        result = search.run(update)
    summary = {"out": cfg.out, "interrupted": result.interrupted, "sets": result.labels,
               "best": result.cross["best"], "cross_knn": result.cross["knn"],
               "cross_linear": result.cross["linear"]}
    if json:
        print_json(summary)
    else:
        for label in result.labels:
            best = result.cross["best"][label]
            console.print(f"{label}: {best['name'] if best else 'nothing found'}")
        console.print(f"wrote one folder per set and {cfg.out}/cross.csv, cross.json, "
                      "cross.png, report.md")
    if result.interrupted:
        raise typer.Exit(130)
