"""``edgessl study``: how a population of architectures ranks across downstream sets."""

from __future__ import annotations

import json as jsonlib
from typing import Annotated, Any

import typer
from rich.table import Table

from edgessl.cli.app import app, console, print_json
from edgessl.cli.common import DeviceOpt, JsonOpt, ResolutionOpt
from edgessl.cli.progress import ProgressBar
from edgessl.errors import BadInput


def _train_opts(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs; values read as JSON where they parse (numbers, true, null), else text."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--train-opt {pair!r}: expected KEY=VALUE (e.g. lr=0.1)")
        try:
            out[key.strip().replace("-", "_")] = jsonlib.loads(value)
        except ValueError:
            out[key.strip().replace("-", "_")] = value
    return out


def _list(json: bool) -> None:
    from edgessl.study import family_table

    rows = family_table()
    if json:
        print_json({"families": rows})
        return
    table = Table("family", "members", "MFLOPs at 224", "M params", "what")
    for r in rows:
        table.add_row(r["family"], str(r["members"]),
                      f"{r['min_mflops']:.0f}-{r['max_mflops']:.0f}",
                      f"{r['min_mparams']:.1f}-{r['max_mparams']:.1f}", r["description"])
    console.print(table)
    console.print("Members are named like " + ", ".join(r["example"] for r in rows[1:])
                  + "; a name works wherever a baseline does (cost, train --space "
                  "baseline:NAME, eval, export, bench); docs/study.md has the grammar.")


@app.command("study")
def study(
    variants: Annotated[str | None, typer.Option(
        "--variants", help="A family (see --list) or a file: one arch JSON or baseline / "
                           "family-member name per line.")] = None,
    downstream: Annotated[str | None, typer.Option(
        "--downstream", help="Comma list of labelled sets: digits, fashion-mnist, "
                             "fashion-mnist-sample or folders (any layout --data takes).")
    ] = None,
    supernet: Annotated[str | None, typer.Option(
        "--supernet", help="Supernet checkpoint: variants are its subnets, inherited weights.")
    ] = None,
    train: Annotated[bool, typer.Option(
        "--train", help="Train each variant standalone with SSL on --pretrain (resumable).")
    ] = False,
    pretrain: Annotated[str | None, typer.Option(
        "--pretrain", help="Pre-training images (--train), also scored when labelled; "
                           "default with --supernet: the set it was trained on.")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", help="Keep N variants spread evenly over the MFLOPs range.")] = None,
    max_mflops: Annotated[float | None, typer.Option(
        "--max-mflops", help="Keep the variants of at most this many MFLOPs.")] = None,
    resolution: ResolutionOpt = None,
    protocol: Annotated[str, typer.Option(
        "--protocol", help="knn, linear or both.")] = "both",
    metric: Annotated[str | None, typer.Option(
        "--metric", help="knn or linear: the accuracy plots and verdict use (default: linear "
                         "when measured).")] = None,
    bank_size: Annotated[int, typer.Option(
        "--bank-size", help="Labelled train images per set (kNN bank, probe training).")
    ] = 1000,
    test_size: Annotated[int, typer.Option(
        "--test-size", help="Test images per set.")] = 1000,
    bn_images: Annotated[int, typer.Option(
        "--bn-images", help="Bank images BatchNorm statistics are re-estimated on.")] = 500,
    probe_iters: Annotated[int, typer.Option(
        "--probe-iters", help="L-BFGS iterations of the linear probe.")] = 300,
    ssl: Annotated[str, typer.Option("--ssl", help="SSL objective (--train).")] = "simclr",
    epochs: Annotated[int, typer.Option("--epochs", help="Epochs per variant (--train).")] = 10,
    max_steps: Annotated[int | None, typer.Option(
        "--max-steps", help="Stop each variant's training after N steps (--train).")] = None,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", help="Batch size per variant (--train).")] = 64,
    seed: Annotated[int, typer.Option("--seed", help="Training seed (--train).")] = 0,
    train_opt: Annotated[list[str] | None, typer.Option(
        "--train-opt", help="Any other edgessl train option, KEY=VALUE (repeat).")] = None,
    device: DeviceOpt = "auto",
    out: Annotated[str, typer.Option("--out", help="Output folder.")] = "results/study",
    list_families: Annotated[bool, typer.Option(
        "--list", help="Show the handcrafted families and their sizes, then exit.")] = False,
    json: JsonOpt = False,
) -> None:
    """Evaluate many architectures on several labelled sets: do their rankings agree?

    Writes study.csv, correlations.json, winners.json, heatmap.png, scatter.png and
    report.md into --out; an interrupted study continues where it stopped.

    Example:

    ```
    edgessl study --list
    edgessl space sample --n 120 --seed 0 > subnets.jsonl
    edgessl study --supernet runs/fm/last.ckpt --variants subnets.jsonl \\
        --downstream digits,fashion-mnist,data/fm-footwear --out results/study
    edgessl study --train --pretrain ~/photos --variants resnet --limit 20 \\
        --downstream data/a,data/b --epochs 100 --out results/study-r
    torchrun --nproc-per-node 8 -m edgessl study --train ...   # variants over ranks
    ```
    """
    if list_families:
        _list(json)
        return
    from edgessl.study import StudyConfig, StudySession

    if variants is None:
        raise BadInput("--variants is required (a family, see --list, or a file)")
    sets = tuple(s.strip() for s in (downstream or "").split(",") if s.strip())
    options = _train_opts(train_opt or [])
    if train:
        options = {"ssl": ssl, "epochs": epochs, "max_steps": max_steps,
                   "batch_size": batch_size, "seed": seed, **options}
    cfg = StudyConfig(variants=variants, downstream=sets, out=out, supernet=supernet,
                      train=train, pretrain=pretrain, limit=limit, max_mflops=max_mflops,
                      resolution=resolution, protocol=protocol, metric=metric, bank=bank_size,
                      test=test_size, bn_images=bn_images, probe_iters=probe_iters,
                      train_options={k: v for k, v in options.items() if v is not None},
                      device=device)
    session = StudySession(cfg)
    quiet = json or not session.env.main  # under torchrun rank 0 shows its own share
    total = len(session.variants[session.env.rank::session.env.world])
    with ProgressBar("study", quiet=quiet) as bar:
        bar.update(0, total, "")

        def update(p: dict) -> None:
            bar.update(p["done"], total, f"{p['variant'][:40]}: {p['stage']}")

        result = session.run(update)
    if result is not None:
        _report(result, out, cfg.primary, json)
        if result.interrupted:
            raise typer.Exit(130)


def _report(result, out: str, primary: str, json: bool) -> None:
    wins = result.winners.get(primary, {})
    summary = {"out": out, "interrupted": result.interrupted,
               "variants": len(result.rows), "primary": primary,
               "winners": {s: r["winner"] for s, r in wins.get("per_set", {}).items()},
               "wins_everywhere": wins.get("wins_everywhere"),
               "vs_pretrain": {s: r["kendall"] for s, r in
                               (result.correlations.get(primary, {}).get("vs_pretrain")
                                or {}).items()}}
    if json:
        print_json(summary)
        return
    for s, name in summary["winners"].items():
        console.print(f"best on {s}: {name}")
    if summary["vs_pretrain"]:
        taus = ", ".join(f"{s} {'n/a' if t is None else f'{t:.2f}'}"
                         for s, t in summary["vs_pretrain"].items())
        console.print(f"Kendall tau with pre-training {primary} accuracy: {taus}")
    console.print(f"wrote {out}/study.csv, correlations.json, winners.json, heatmap.png, "
                  "scatter.png, report.md")
