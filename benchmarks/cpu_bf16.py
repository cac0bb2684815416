"""CPU bf16 autocast: images/s of one BYOL sandwich step in fp32 and under bf16 autocast, for
the three supernets, side by side in one run (why bf16 on the CPU is an option, not the default).
Writes BENCHMARKS.md (section cpu_bf16) unless --no-write.

    OMP_NUM_THREADS=2 python benchmarks/cpu_bf16.py --threads 2
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

from edgessl.runtime.host import cpu_flags as host_cpu_flags  # noqa: E402
from edgessl.spaces import get_space  # noqa: E402
from edgessl.train.model import sample_students  # noqa: E402

SPACES = ("mobilenet", "resnet", "resnet18")


def cpu_flags() -> str:
    """The bf16-relevant CPU flags (AMX, AVX-512 BF16) of this machine, from /proc/cpuinfo."""
    flags = host_cpu_flags()
    if flags is None:
        return "unknown"
    return ", ".join(sorted(f for f in flags if f.startswith(("amx", "avx512_bf16")))) or "none"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--resolution", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    steps = {(space, p): _step_fn(space, cpu, args.batch_size, args.resolution, ssl="byol",
                                  precision=p)
             for space in SPACES for p in ("fp32", "bf16")}
    times = {k: [] for k in steps}
    for r in range(args.rounds + 1):  # round 0 warms up; interleaved so load hits all alike
        for (space, p), step in steps.items():
            t = step(sample_students(get_space(space), 0, r, 1))
            if r:
                times[space, p].append(t)
    rate = {k: args.batch_size / statistics.median(v) for k, v in times.items()}
    cmd = "python benchmarks/cpu_bf16.py " + " ".join(sys.argv[1:])
    lines = ["## CPU bf16 autocast", "", f"Command: `{cmd.strip()}`  ",
             f"Date: {today()}; machine: {machine()}; {args.threads} thread(s); CPU bf16 "
             f"flags: {cpu_flags()}.", "",
             f"BYOL sandwich step (largest + smallest + 1 sampled; forward, backward, AdamW) on "
             f"two views of a batch of {args.batch_size} at {args.resolution} px, channels-last, "
             f"median of {args.rounds} interleaved steps each:", "",
             "| supernet | fp32 img/s | bf16 autocast img/s | bf16 / fp32 |",
             "| --- | --- | --- | --- |"]
    for space in SPACES:
        f, b = rate[space, "fp32"], rate[space, "bf16"]
        lines.append(f"| {space} | {f:.1f} | {b:.1f} | {b / f:.2f}x |")
    lines += ["", "`--precision auto` (the default) uses bf16 autocast on CUDA only. On this CPU "
              "dense convolutions (resnet, resnet18) gain most from it; the mobilenet space's "
              "depthwise convolutions and BatchNorm gain little or lose (0.86x to 1.09x over "
              "three measurements), so `--precision bf16` is an option to ask for, not the "
              "default."]
    publish("cpu_bf16", lines, not args.no_write)


if __name__ == "__main__":
    main()
