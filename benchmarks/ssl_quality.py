"""SSL quality on Fashion-MNIST: does the supernet learn without labels?

Trains a supernet (``--space``; sandwich rule, in-place distillation) on the Fashion-MNIST train
split for a fixed wall-clock budget, then reports kNN and linear-probe accuracy of the largest
and the smallest subnet against the same networks at random init (BN re-estimated) and kNN on
raw pixels, with a labelled subset of the train split as the bank and the test split for
accuracy. Writes the figures into BENCHMARKS.md (section ssl_quality) unless --no-write.
``--sweep 48,56,64`` adds kNN of trained vs random init at other evaluation sizes: the
untrained reference depends on the size much more than the trained network does.

    flock /tmp/edgessl-heavy.lock python benchmarks/ssl_quality.py
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import machine, publish, today  # noqa: E402

from edgessl.data import eval_split  # noqa: E402
from edgessl.evaluate import evaluate_backbone, knn_accuracy, load_backbone  # noqa: E402
from edgessl.train import train  # noqa: E402


def raw_pixel_knn(bank_size: int, test_size: int) -> float:
    bank, test = eval_split("fashion-mnist", bank_size, test_size)
    f = lambda s: s.images.flatten(1).float() / 255  # noqa: E731
    return knn_accuracy(f(bank), torch.as_tensor(bank.labels), f(test),
                        torch.as_tensor(test.labels))


def evaluate_subnets(ckpt: Path, resolution: int, protocol: str, bank_size: int,
                     test_size: int, seed: int) -> dict[str, dict]:
    """Accuracy of the largest and smallest subnet, trained and at random init (drawn with
    ``seed``), keyed ``"largest/trained"`` etc."""
    results = {}
    for arch in ("largest", "smallest"):
        for init in ("trained", "random"):
            net, _ = load_backbone(str(ckpt), arch, init_random=init == "random", seed=seed)
            results[f"{arch}/{init}"] = evaluate_backbone(net, "fashion-mnist", resolution,
                                                          protocol, bank_size, test_size)
    return results


def sweep_lines(ckpt: Path, resolutions: list[int], bank_size: int, test_size: int,
                seed: int) -> list[str]:
    """kNN of each subnet, trained and at random init, at several evaluation resolutions."""
    lines = ["kNN % by evaluation resolution (same checkpoint, BN re-estimated at each):", "",
             "| px | largest trained | largest random | smallest trained | smallest random |",
             "| --- | --- | --- | --- | --- |"]
    for res in resolutions:
        results = evaluate_subnets(ckpt, res, "knn", bank_size, test_size, seed)
        lines.append(f"| {res} | " + " | ".join(f"{100 * r['knn']:.2f}"
                                                for r in results.values()) + " |")
        print(lines[-1], flush=True)
    return lines


def resolutions(text: str) -> list[int]:
    """``--sweep`` value: comma-separated sizes in pixels."""
    try:
        sizes = [int(r) for r in text.split(",")] if text else []
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of "
                                         "sizes in pixels, e.g. 48,56,64") from None
    if any(r < 8 for r in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: sizes must be at least 8 px")
    return sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=19.0, help="training wall-clock budget")
    ap.add_argument("--ssl", default="vicreg",
                    help="vicreg: as good as byol's mean, without its seed-2 stall, and 10 kNN "
                         "points above simclr in the same time")
    ap.add_argument("--space", default="resnet18",
                    help="supernet space: resnet18's largest subnet beat raw pixels in four "
                         "runs, mobilenet's never (BENCHMARKS.md)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--resolution", type=int, default=56,
                    help="train and evaluation size: 56 px (at 48 px the untrained reference "
                         "is 8 points stronger, at 32 px features 10 points weaker; BENCHMARKS)")
    ap.add_argument("--lr", type=float, default=None,
                    help="default: the objective's for the optimizer (sgd at batch 64: 0.03 for "
                         "vicreg, 0.1 for the others)")
    ap.add_argument("--optimizer", default="sgd")
    ap.add_argument("--precision", default="auto",
                    help="bf16: autocast on the CPU too (1.47x for the resnet18 sandwich here)")
    ap.add_argument("--num-sampled", type=int, default=1)
    ap.add_argument("--min-scale", type=float, default=0.4,
                    help="smallest crop area: 0.4 beat 0.2 and 0.6 in equal-time pilots")
    ap.add_argument("--target-momentum", type=float, default=None,
                    help="starting EMA rate of the BYOL/MoCo v3 target (default 0.99)")
    ap.add_argument("--local-crops", type=int, default=0,
                    help="multi-crop: small crops per image (no gain at equal time in pilots)")
    ap.add_argument("--subset", type=int, default=None, help="train images (default all)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max-steps", type=int, default=780,
                    help="LR schedule length (capped at --epochs): the resnet18 sandwich at 56 px "
                         "ran 683-780 steps in 19 min on 2 cores (937 = one epoch at 48 px)")
    ap.add_argument("--bank-size", type=int, default=10000)
    ap.add_argument("--test-size", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0, help="training seed (init, data order, views)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=0,
                    help="data workers (0: augment between steps, no third busy process)")
    ap.add_argument("--sweep", type=resolutions, default=[],
                    help="extra evaluation resolutions for a kNN table of trained vs random "
                         "init, e.g. 48,56,64 (the untrained reference depends on it)")
    ap.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    tmp = Path(tempfile.mkdtemp(prefix="edgessl-sslq-"))
    out = Path(args.out) if args.out else tmp / "RUN"
    opts = {"data": "fashion-mnist", "out": str(out), "ssl": args.ssl, "space": args.space,
            "epochs": args.epochs, "batch_size": args.batch_size,
            "resolution": args.resolution, "optimizer": args.optimizer, "lr": args.lr,
            "num_sampled": args.num_sampled, "min_scale": args.min_scale,
            "local_crops": args.local_crops, "target_momentum": args.target_momentum,
            "subset": args.subset, "workers": args.workers,
            "time_limit": args.minutes * 60, "warmup_epochs": 0.01,
            "max_steps": args.max_steps, "ckpt_every": 100,
            "device": "cpu", "seed": args.seed, "precision": args.precision}
    t0 = time.time()
    last = [0.0]

    def report(info: dict) -> None:
        if time.time() - last[0] > 30:
            last[0] = time.time()
            print(f"  step {info['step']}/{info['total']} loss {info['loss']:.3f} "
                  f"{info['images_per_s']:.1f} img/s", flush=True)

    summary = train(opts, on_step=report)
    train_s = time.time() - t0
    print(json.dumps({k: summary[k] for k in ("steps", "epochs", "images_per_s", "losses")}))

    results = {"raw_pixels": {"knn": raw_pixel_knn(args.bank_size, args.test_size)},
               **evaluate_subnets(out / "last.ckpt", args.resolution, "both", args.bank_size,
                                  args.test_size, args.seed)}
    gain_l = results["largest/trained"]["knn"] - results["largest/random"]["knn"]
    gain_s = results["smallest/trained"]["knn"] - results["smallest/random"]["knn"]
    checks = {
        "largest kNN >= random init + 10 points": gain_l >= 0.10,
        "largest kNN > raw-pixel kNN":
            results["largest/trained"]["knn"] > results["raw_pixels"]["knn"],
        "smallest kNN >= random init + 5 points": gain_s >= 0.05,
    }
    cmd = "python benchmarks/ssl_quality.py " + " ".join(sys.argv[1:])
    pct = lambda v: f"{100 * v:.2f}" if v is not None else "-"  # noqa: E731
    lines = [
        "## SSL quality (Fashion-MNIST)",
        "",
        f"Command: `{cmd.strip()}`  ",
        f"Date: {today()}; machine: {machine()}; {args.threads} training thread(s) + "
        f"{args.workers} data worker(s).",
        "",
        f"Training: {args.space} supernet, {args.ssl}, sandwich rule (largest + smallest + "
        f"{args.num_sampled} sampled, in-place distillation), {args.resolution} px, batch "
        f"{args.batch_size}, crops of >= {args.min_scale:g} of the image area"
        f"{f' + {args.local_crops} local crops' if args.local_crops else ''}, "
        f"{f'target momentum {args.target_momentum:g}, ' if args.target_momentum else ''}"
        f"{args.optimizer}, "
        f"lr {summary['lr']:g}, "
        f"{summary['train_images']} train images; {summary['steps']} steps of a "
        f"{summary['total_steps']}-step schedule in {train_s / 60:.1f} min (budget "
        f"{args.minutes:g} min; {summary['epochs']:.2f} epochs, "
        f"{summary['images_per_s']:.1f} img/s).",
        f"Evaluation: bank = first {args.bank_size} images of the train split (labels used "
        f"only here), accuracy on {args.test_size} test-split images, {args.resolution} px, BN "
        "statistics re-estimated on the bank for every network (random init too: the "
        f"same network drawn with seed {args.seed}).",
        "",
        "| network | kNN (k=20, T=0.07) % | linear probe % |",
        "| --- | --- | --- |",
        f"| raw pixels | {pct(results['raw_pixels']['knn'])} | - |",
    ]
    for key in ("largest/trained", "largest/random", "smallest/trained", "smallest/random"):
        lines.append(f"| {key.replace('/', ', ')} | {pct(results[key]['knn'])} | "
                     f"{pct(results[key]['linear'])} |")
    lines += ["", "Acceptance: " + "; ".join(f"{k}: {'yes' if v else 'NO'}"
                                             for k, v in checks.items()) + "."]
    if args.sweep:
        lines += ["", *sweep_lines(out / "last.ckpt", args.sweep, args.bank_size,
                                   args.test_size, args.seed)]
    publish("ssl_quality", lines, not args.no_write)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
