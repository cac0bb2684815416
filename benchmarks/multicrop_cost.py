"""Multi-crop cost: a BYOL sandwich step (largest + smallest + 1 sampled subnet) with 0, 2, 4
and 6 local crops, measured interleaved in one run and reported relative to two views.
Writes BENCHMARKS.md (section multicrop_cost) unless --no-write.

    flock /tmp/edgessl-heavy.lock python benchmarks/multicrop_cost.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import machine, today, write_section  # noqa: E402

from edgessl.data.transforms import local_resolution  # noqa: E402
from edgessl.spaces import get_space  # noqa: E402
from edgessl.train.model import build_ssl_model, sample_students  # noqa: E402


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
    model, _ = build_ssl_model("mobilenet", None, "byol")
    model.to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], 0.01,
                          momentum=0.9)
    g = torch.Generator().manual_seed(0)
    small = local_resolution(args.resolution)

    def views(n: int, res: int) -> list[torch.Tensor]:
        return [torch.randn(args.batch_size, 3, res, res, generator=g).contiguous(
            memory_format=torch.channels_last) for _ in range(n)]

    x1, x2 = views(2, args.resolution)
    crops = [int(c) for c in args.crops.split(",")]
    local = {n: views(n, small) for n in crops}

    def step(n: int, r: int) -> float:
        t = time.perf_counter()
        loss, _ = model(x1, x2, sample_students(space, 0, r, 1), local[n])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - t

    for n in crops:  # warm-up
        step(n, 0)
    times: dict[int, list[float]] = {n: [] for n in crops}
    for r in range(args.rounds):  # interleaved, so load changes hit all alike
        for n in crops:
            times[n].append(step(n, r + 1))
    base = statistics.median(times[crops[0]])
    cmd = "python benchmarks/multicrop_cost.py " + " ".join(sys.argv[1:])
    lines = [
        "## Multi-crop cost",
        "",
        f"Command: `{cmd.strip()}`  ",
        f"Date: {today()}; machine: {machine()}; {args.threads} thread(s).",
        "",
        f"BYOL sandwich step (largest + smallest + 1 sampled, SGD) on two views of a batch of "
        f"{args.batch_size} at {args.resolution} px plus N local crops at {small} px, median "
        f"of {args.rounds} interleaved steps (model only; augmentation not included):",
        "",
        "| local crops | step (s) | relative to two views |",
        "| --- | --- | --- |",
    ]
    for n in crops:
        t = statistics.median(times[n])
        lines.append(f"| {n} | {t:.3f} | {t / base:.2f}x |")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("multicrop_cost", text)


if __name__ == "__main__":
    main()
