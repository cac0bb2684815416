"""``edgessl train`` (SSL supernet or standalone training) and ``edgessl eval`` (kNN / linear
probe of a trained or randomly initialised network)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from edgessl.cli.app import app, console, print_json
from edgessl.cli.common import SPACES_TEXT, DeviceOpt, JsonOpt, ResolutionOpt
from edgessl.cli.progress import ProgressBar
from edgessl.errors import BadInput
from edgessl.ssl import OBJECTIVES
from edgessl.train.optim import OPTIMIZERS

DataOpt = Annotated[str | None, typer.Option(
    "--data", help="Image folder (ImageFolder layout or any images), digits or fashion-mnist.")]


@app.command("train")
def train_cmd(
    out: Annotated[str, typer.Option("--out", help="Run folder (last.ckpt, metrics.csv).")],
    data: DataOpt = None,
    ssl: Annotated[str | None, typer.Option(
        "--ssl", help=f"SSL objective: {', '.join(OBJECTIVES)} (default vicreg: it "
                        "learned on every built-in set, BENCHMARKS.md).")] = None,
    space: Annotated[str | None, typer.Option(
        "--space", help=f"{SPACES_TEXT} (supernet, sandwich rule) or baseline:NAME "
                        "(standalone). Default mobilenet.")] = None,
    arch: Annotated[str | None, typer.Option(
        "--arch", help="Arch JSON file: train this one network standalone.")] = None,
    init_from: Annotated[str | None, typer.Option(
        "--init-from", help="Checkpoint to start from instead of a fresh init: the same "
                            "network for --arch or a baseline (fine-tuning, e.g. a search "
                            "result's best.ckpt), a supernet of the same space for a "
                            "supernet run (e.g. the shipped one, on your data).")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Epochs (default 10).")] = None,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", help="Images per step and process (default 64).")] = None,
    resolution: ResolutionOpt = None,
    optimizer: Annotated[str | None, typer.Option(
        "--optimizer", help=f"{', '.join(OPTIMIZERS)} (default sgd).")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Peak learning rate.")] = None,
    weight_decay: Annotated[float | None, typer.Option("--weight-decay")] = None,
    warmup_epochs: Annotated[float | None, typer.Option("--warmup-epochs")] = None,
    num_sampled: Annotated[int | None, typer.Option(
        "--num-sampled", help="Random subnets per step besides the smallest (default 2).")] = None,
    slow_start: Annotated[float | None, typer.Option(
        "--slow-start", help="Fraction of the steps that train the largest subnet alone "
                             "before the sandwich rule starts (SlimCLR's slow start; "
                             "default 0).")] = None,
    clip_grad: Annotated[float | None, typer.Option(
        "--clip-grad", help="Max gradient norm (0: off).")] = None,
    temperature: Annotated[float | None, typer.Option(
        "--temperature", help="Contrastive temperature (default: simclr 0.5, mocov3 0.2).")] = None,
    target_momentum: Annotated[float | None, typer.Option(
        "--target-momentum", help="Starting EMA rate of the momentum target (byol/mocov3; "
                                  "default 0.99, rising to 1 on a cosine). 0.9 learned faster "
                                  "in short Fashion-MNIST runs.")] = None,
    min_scale: Annotated[float | None, typer.Option(
        "--min-scale", help="Smallest random crop, as a fraction of the image area "
                            "(default by image size: 0.5 up to 16 px, 0.4 up to 32 px, 0.2 "
                            "for photos).")] = None,
    flip: Annotated[bool | None, typer.Option(
        "--flip/--no-flip", help="Random horizontal flips in the augmentation (default: on, "
                                 "except for data a mirror changes: digits).")] = None,
    local_crops: Annotated[int | None, typer.Option(
        "--local-crops", help="Extra small crops per image (multi-crop, byol/mocov3): each "
                              "predicts both global views' targets (default 0).")] = None,
    local_resolution: Annotated[int | None, typer.Option(
        "--local-resolution", help="Side of the local crops in px (default 96/224 of "
                                   "--resolution: 24 at 48).")] = None,
    subset: Annotated[int | None, typer.Option(
        "--subset", help="Train on the first N images only.")] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps")] = None,
    time_limit: Annotated[float | None, typer.Option(
        "--time-limit", help="Stop (and checkpoint) after this many seconds.")] = None,
    ckpt_every: Annotated[int | None, typer.Option(
        "--ckpt-every", help="Also checkpoint every K steps (default 200).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Data loader workers.")] = None,
    compile: Annotated[bool | None, typer.Option("--compile", help="torch.compile.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
    device: DeviceOpt = None,
    precision: Annotated[str | None, typer.Option(
        "--precision", help="auto (bf16 autocast on CUDA, fp32 on CPU), fp32 or bf16 (also on "
                            "CPU: 1.46x faster for resnet18 on an AMX CPU, about even for "
                            "mobilenet).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue OUT/last.ckpt.")] = False,
    json: JsonOpt = False,
) -> None:
    """Self-supervised training of a supernet (sandwich rule with in-place distillation) or of
    one standalone network. Multi-GPU: torchrun --nproc-per-node N -m edgessl train ...

    Example: edgessl train --data digits --epochs 5 --out runs/digits
    """
    from edgessl.arch import Arch
    from edgessl.train import train

    given = dict(data=data, out=out, ssl=ssl, space=space, init_from=init_from, epochs=epochs,
                 batch_size=batch_size,
                 resolution=resolution, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
                 warmup_epochs=warmup_epochs, num_sampled=num_sampled, slow_start=slow_start,
                 clip_grad=clip_grad,
                 temperature=temperature, target_momentum=target_momentum,
                 min_scale=min_scale, flip=flip, local_crops=local_crops,
                 local_resolution=local_resolution, subset=subset, max_steps=max_steps,
                 time_limit=time_limit, ckpt_every=ckpt_every, workers=workers,
                 compile=compile, seed=seed, device=device, precision=precision)
    if arch is not None:
        a = Arch.load(arch)
        if space is not None and space != a.space:
            raise BadInput(f"--arch {arch} is of space {a.space!r}, not --space {space!r}")
        given.update(arch=a.to_dict(), space=a.space)
    if ssl is not None and ssl not in OBJECTIVES:
        raise BadInput(f"unknown --ssl {ssl!r}; known: {', '.join(OBJECTIVES)}")
    with ProgressBar("train", quiet=json) as bar:

        def on_step(info: dict) -> None:
            bar.update(info["step"], info["total"],
                       f"loss {info['loss']:.4f}  {info['images_per_s']:.1f} img/s")

        summary = train(given, resume=resume, on_step=on_step)
    if summary["rank"] != 0:  # under torchrun only rank 0 reports
        return
    if json:
        print_json(summary)
        return
    table = Table("run", "steps", "epochs", "final loss", "img/s", "checkpoint")
    table.add_row(f"{summary['kind']} {summary['space']} {summary['ssl']}",
                  f"{summary['steps']}/{summary['total_steps']}", str(summary["epochs"]),
                  f"{summary['final_loss']:.4f}" if summary["final_loss"] is not None else "-",
                  f"{summary['images_per_s']:.1f}", summary["checkpoint"])
    console.print(table)


@app.command("eval")
def eval_cmd(
    ckpt: Annotated[str, typer.Argument(help="Training checkpoint or edgessl-model/1 file.")],
    data: Annotated[str, typer.Option(
        "--data", help="Labelled folder (ImageFolder), digits or fashion-mnist.")],
    arch: Annotated[str, typer.Option(
        "--arch", help="Subnet of a supernet checkpoint: largest, smallest or an Arch JSON "
                       "file.")] = "largest",
    init: Annotated[str, typer.Option(
        "--init", help="trained, or random: the same network untrained.")] = "trained",
    protocol: Annotated[str, typer.Option("--protocol", help="knn, linear or both.")] = "both",
    resolution: ResolutionOpt = None,
    bank_size: Annotated[int | None, typer.Option(
        "--bank-size", help="Labelled train images used, a fixed random sample (default "
                            "10000; the output states the total).")] = None,
    test_size: Annotated[int | None, typer.Option(
        "--test-size", help="Test images used, a fixed random sample (default 10000).")] = None,
    val_data: Annotated[str | None, typer.Option(
        "--val-data", help="Labelled folder to score on (default: DATA/val or DATA/test of a "
                           "train/val layout, else a fixed 20% of --data).")] = None,
    k: Annotated[int, typer.Option("--k", help="Neighbours for kNN.")] = 20,
    probe: Annotated[str, typer.Option(
        "--probe", help="Linear probe fit: auto (exact L-BFGS up to 20000 bank images, else "
                        "mini-batch on the device), lbfgs or sgd.")] = "auto",
    workers: Annotated[int | None, typer.Option(
        "--workers", help="Data loader workers (default: 8 with a GPU, 0 on CPU).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for --init random.")] = 0,
    device: DeviceOpt = "auto",
    json: JsonOpt = False,
) -> None:
    """kNN (cosine, temperature-weighted) and linear-probe accuracy of frozen features on a
    fixed held-out split, after re-estimating BatchNorm statistics.

    Example: edgessl eval runs/digits/last.ckpt --arch smallest --data digits --json
    """
    from edgessl.dist import resolve_device
    from edgessl.evaluate import (
        BANK_SIZE,
        TEST_SIZE,
        check_eval_options,
        evaluate_backbone,
        load_backbone,
    )
    from edgessl.train import default_resolution
    from edgessl.train.config import check_seed

    if init not in ("trained", "random"):
        raise BadInput(f"--init {init!r}; allowed: trained, random")
    check_seed(seed)
    check_eval_options(32 if resolution is None else resolution, bank_size, test_size, k,
                       protocol, probe, workers)
    dev = resolve_device(device)
    model, info = load_backbone(ckpt, arch, init_random=init == "random", seed=seed)
    res = resolution if resolution is not None else info.get("resolution")
    if res is None:
        from edgessl.data import open_dataset

        res = default_resolution(open_dataset(data, "test", val_data).native_size)
    with ProgressBar("eval", quiet=json) as bar:
        result = evaluate_backbone(
            model, data, int(res), protocol, BANK_SIZE if bank_size is None else bank_size,
            TEST_SIZE if test_size is None else test_size,
            dev, k=k, val_data=val_data, workers=workers, probe=probe,
            on_stage=lambda stage, done, total: bar.update(done, total, stage))
    result = {"checkpoint": ckpt, "model": info["name"], "kind": info["kind"], "init": init,
              **result}
    if json:
        print_json(result)
        return
    table = Table("model", "init", "resolution", "kNN", "linear")

    def fmt(v: float | None) -> str:
        return f"{100 * v:.2f}%" if v is not None else "-"

    table.add_row(result["model"], init, str(res), fmt(result.get("knn")),
                  fmt(result.get("linear")))
    console.print(table)
    skipped = (f"; {result['skipped_images']} unreadable images skipped"
               if result["skipped_images"] else "")
    console.print(f"bank {result['bank_size']} of {result['bank_total']} training images, "
                  f"test {result['test_size']} of {result['test_total']}{skipped}")
