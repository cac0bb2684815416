"""Multi-crop cost: a BYOL sandwich step (largest + smallest + 1 sampled subnet) with 0, 2, 4
and 6 local crops, measured interleaved in one run and reported relative to two views.
Writes BENCHMARKS.md (section multicrop_cost) unless --no-write.

    flock /tmp/edgessl-heavy.lock python benchmarks/multicrop_cost.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import machine, publish, today  # noqa: E402
from train_throughput import _step_fn  # noqa: E402

from edgessl.data.transforms import local_resolution  # noqa: E402
from edgessl.spaces import get_space  # noqa: E402
from edgessl.train.model import sample_students  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--resolution", type=int, default=48)
    ap.add_argument("--crops", default="0,2,4,6", help="local crops per image to compare")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    space = get_space("mobilenet")
    cpu = torch.device("cpu")
    crops = [int(c) for c in args.crops.split(",")]
    steps = {n: _step_fn("mobilenet", cpu, args.batch_size, args.resolution, ssl="byol",
                         local_crops=n) for n in crops}
    for step in steps.values():  # warm-up
        step(sample_students(space, 0, 0, 1))
    times: dict[int, list[float]] = {n: [] for n in crops}
    for r in range(args.rounds):  # interleaved, so load changes hit all alike
        for n, step in steps.items():
            times[n].append(step(sample_students(space, 0, r + 1, 1)))
    base = statistics.median(times[crops[0]])
    cmd = "python benchmarks/multicrop_cost.py " + " ".join(sys.argv[1:])
    lines = [
        "## Multi-crop cost",
        "",
        f"Command: `{cmd.strip()}`  ",
        f"Date: {today()}; machine: {machine()}; {args.threads} thread(s).",
        "",
        f"BYOL sandwich step (largest + smallest + 1 sampled, AdamW) on two views of a batch "
        f"of {args.batch_size} at {args.resolution} px plus N local crops at "
        f"{local_resolution(args.resolution)} px, median "
        f"of {args.rounds} interleaved steps (model only; augmentation not included):",
        "",
        "| local crops | step (s) | relative to two views |",
        "| --- | --- | --- |",
    ]
    for n in crops:
        t = statistics.median(times[n])
        lines.append(f"| {n} | {t:.3f} | {t / base:.2f}x |")
    publish("multicrop_cost", lines, not args.no_write)


if __name__ == "__main__":
    main()
