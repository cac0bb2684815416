"""Training throughput: one sandwich step (largest + smallest + 2 sampled subnets, in-place
distillation) against one step of the largest subnet alone, measured side by side in one run
and reported as a ratio (goal: at most 2.5x). Where CUDA exists it also measures, at 224 px with
bf16 autocast and channels-last, the supernet steps next to a torchvision resnet50 SimCLR step.
Writes BENCHMARKS.md (section train_throughput) unless --no-write.

    flock /tmp/edgessl-heavy.lock python benchmarks/train_throughput.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import machine, publish, today  # noqa: E402

from edgessl.data.transforms import local_resolution  # noqa: E402
from edgessl.ops.depthwise import native_depthwise  # noqa: E402
from edgessl.spaces import get_space  # noqa: E402
from edgessl.train.config import uses_bf16  # noqa: E402
from edgessl.train.model import build_ssl_model, sample_students  # noqa: E402


def _step_fn(space: str, device: torch.device, batch: int, res: int,
             memory_format: torch.memory_format = torch.channels_last, ssl: str = "simclr",
             local_crops: int = 0, precision: str = "auto"):
    """A function that runs one training step (forward, backward, AdamW) on fixed random
    views and returns its seconds; ``local_crops`` adds multi-crop views of
    :func:`local_resolution` px (with ``ssl`` byol or mocov3); ``precision`` is
    ``edgessl train --precision`` (auto: bf16 autocast on CUDA only)."""
    model, ref = build_ssl_model(space, None, ssl)
    model.to(device, memory_format=memory_format).train()
    cuda = device.type == "cuda"
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], 1e-4)
    g = torch.Generator().manual_seed(0)
    sizes = [res, res] + [local_resolution(res)] * local_crops
    x1, x2, *local = (torch.randn(batch, 3, r, r, generator=g).to(device).contiguous(
        memory_format=memory_format) for r in sizes)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16)
                if uses_bf16(precision, cuda) else nullcontext())

    def step(students) -> float:
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        with autocast:
            loss, _ = model(x1, x2, students, local)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t

    return step


def measure(device: torch.device, batch: int, res: int, rounds: int,
            compare: bool = False) -> dict:
    """Median img/s of the largest-alone and sandwich steps as training runs them ("fast":
    edgessl's depthwise convolution, channels-last); with ``compare`` also with PyTorch's own
    depthwise convolution ("native") and with NCHW tensors ("nchw"), interleaved in the same
    rounds."""
    space = get_space("mobilenet")
    step = _step_fn("mobilenet", device, batch, res)
    modes = {"fast": (step, nullcontext)}
    if compare:
        nchw = _step_fn("mobilenet", device, batch, res, torch.contiguous_format)
        modes |= {"native": (step, native_depthwise), "nchw": (nchw, nullcontext)}
    for fn, mode in modes.values():  # warm-up
        with mode():
            fn([])
            fn(sample_students(space, 0, 0, 2))
    times = {(m, k): [] for m in modes for k in ("alone", "sandwich")}
    for r in range(rounds):  # interleaved, so load changes hit all alike
        for m, (fn, mode) in modes.items():
            with mode():
                times[m, "alone"].append(fn([]))
                times[m, "sandwich"].append(fn(sample_students(space, 0, r + 1, 2)))
    out = {}
    for m in modes:
        a, s = statistics.median(times[m, "alone"]), statistics.median(times[m, "sandwich"])
        out[m] = {"largest_img_s": batch / a, "sandwich_img_s": batch / s, "ratio": s / a}
    return out


def measure_resnet50(device: torch.device, batch: int, res: int, rounds: int) -> float:
    step = _step_fn("baseline:resnet50", device, batch, res)
    step([])
    return batch / statistics.median(step([]) for _ in range(rounds))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--gpu-batch-size", type=int, default=128)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    both = measure(torch.device("cpu"), args.batch_size, args.resolution, args.rounds,
                   compare=True)
    cpu, native, nchw = both["fast"], both["native"], both["nchw"]
    cmd = "python benchmarks/train_throughput.py " + " ".join(sys.argv[1:])
    lines = [
        "## Training throughput: sandwich step vs largest subnet alone",
        "",
        f"Command: `{cmd.strip()}`  ",
        f"Date: {today()}; machine: {machine()}; {args.threads} thread(s).",
        "",
        f"SimCLR step (forward, backward, AdamW) on two views of a batch of {args.batch_size} "
        f"at {args.resolution} px, median of {args.rounds} interleaved steps each:",
        "",
        "| device | largest alone img/s | sandwich (largest + smallest + 2 sampled) img/s "
        "| cost ratio (goal <= 2.5) |",
        "| --- | --- | --- | --- |",
        f"| CPU | {cpu['largest_img_s']:.1f} | {cpu['sandwich_img_s']:.1f} | "
        f"{cpu['ratio']:.2f}x |",
        f"| CPU, PyTorch's own depthwise conv (same rounds) | {native['largest_img_s']:.1f} | "
        f"{native['sandwich_img_s']:.1f} | {native['ratio']:.2f}x |",
        f"| CPU, NCHW instead of channels-last (same rounds) | {nchw['largest_img_s']:.1f} | "
        f"{nchw['sandwich_img_s']:.1f} | {nchw['ratio']:.2f}x |",
        "",
        f"`edgessl.ops.depthwise` (taps that only read padding dropped, backward from two "
        f"ordinary convolutions) makes the sandwich step "
        f"{cpu['sandwich_img_s'] / native['sandwich_img_s']:.2f}x and the largest-alone step "
        f"{cpu['largest_img_s'] / native['largest_img_s']:.2f}x faster than PyTorch's own "
        f"depthwise convolution, and channels-last makes the sandwich step "
        f"{cpu['sandwich_img_s'] / nchw['sandwich_img_s']:.2f}x as fast as NCHW, measured side "
        "by side.",
    ]
    if torch.cuda.is_available():
        dev = torch.device("cuda")
        gpu = measure(dev, args.gpu_batch_size, 224, args.rounds)["fast"]
        r50 = measure_resnet50(dev, args.gpu_batch_size, 224, args.rounds)
        lines += [
            f"| {torch.cuda.get_device_name(0)} (224 px, bf16, channels-last, batch "
            f"{args.gpu_batch_size}) | {gpu['largest_img_s']:.1f} | "
            f"{gpu['sandwich_img_s']:.1f} | {gpu['ratio']:.2f}x |",
            "", f"torchvision resnet50 SimCLR step on the same GPU: {r50:.1f} img/s.",
        ]
    else:
        lines += ["", "No GPU in this run: the GPU rows (224 px, bf16, channels-last, next to "
                  "a torchvision resnet50 SimCLR step) are produced by the same command where "
                  "CUDA exists."]
    publish("train_throughput", lines, not args.no_write)


if __name__ == "__main__":
    main()
