"""The training loop: SSL (sandwich rule on a supernet, plain on a standalone network), with
warm-up + cosine LR, gradient clipping, channels-last, bf16 (CUDA; CPU on request), DDP under
torchrun, atomic checkpoints every K steps and every epoch, bit-exact ``--resume``."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgessl.arch import Arch
from edgessl.data import open_dataset, set_epoch, ssl_loader
from edgessl.dist import (
    DistEnv,
    any_flag,
    gather_objects,
    init_distributed,
    resolve_device,
    shutdown,
)
from edgessl.errors import BadInput, RuntimeFailure
from edgessl.spaces import get_space
from edgessl.train.config import TrainConfig, merge_resume, uses_bf16
from edgessl.train.model import build_ssl_model, sample_students
from edgessl.train.optim import build_optimizer, warmup_cosine
from edgessl.train.state import (
    MetricsCSV,
    load_train_state,
    metrics_rows,
    restore,
    save_train_state,
)
from edgessl.utils import FolderLock, atomic_write_text, remove_stale_temps

CKPT_NAME = "last.ckpt"


def default_resolution(native_size: int) -> int:
    """Tiny images (digits, 8 px) train at 32 px, small ones (Fashion-MNIST, 28 px) at 48 px,
    folders of photos at 128 px (the space's smallest deployment resolution). At 32 px the
    last stage of a stride-32 network sees 1x1 maps; 48 px gave Fashion-MNIST features ~8 kNN
    points better at equal training time (BENCHMARKS.md, ssl_quality pilots)."""
    if 0 < native_size <= 16:
        return 32
    return 48 if 0 < native_size <= 32 else 128


def default_min_scale(native_size: int) -> float:
    """Smallest random crop (fraction of the image area) for images of ``native_size`` px: the
    SimCLR/BYOL 0.2 for photos, 0.4 for small images (Fashion-MNIST: 0.4 beat 0.2 and 0.6 in
    pilots) and 0.5 for tiny ones (digits' 8x8: a crop of a fifth of the area keeps about
    3x3 pixels, too little to tell digits apart; 0.5 gave the largest subnet +1.4 points over
    0.2 in 5 epochs). BENCHMARKS.md, SSL recipe."""
    if 0 < native_size <= 16:
        return 0.5
    return 0.4 if 0 < native_size <= 32 else 0.2


def prepare(given: dict[str, Any], resume: bool
            ) -> tuple[TrainConfig, dict | None, FolderLock | None]:
    """The config to run, with ``resume`` the checkpoint to continue, and the lock on
    ``--out`` (held by the main process until the run ends: a second run on the same folder
    is refused). Checks everything that can be checked before anything is written, and
    removes the temp files of a save that was killed."""
    out = Path(given["out"])
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out} exists and is not a folder")
    ckpt = out / CKPT_NAME
    payload, cfg = None, None
    if resume and not ckpt.exists():
        raise BadInput(f"checkpoint not found: {ckpt} (nothing to --resume)")
    if not resume:
        if not given.get("data"):
            raise BadInput("--data is required (a folder, digits or fashion-mnist)")
        cfg = TrainConfig.from_dict({k: v for k, v in given.items() if v is not None})
        cfg.check()
    lock = FolderLock(out).acquire() if int(os.environ.get("RANK", "0")) == 0 else None
    try:
        if resume:
            payload = load_train_state(ckpt)
            cfg = merge_resume(TrainConfig.from_dict(payload["config"]), given)
            cfg.check()
            metrics_rows(out / "metrics.csv", payload["step"])  # refuse a hand-edited file now
        elif ckpt.exists():
            raise BadInput(f"{ckpt} already exists; pass --resume to continue it or choose "
                           "another --out")
        if lock is not None:
            remove_stale_temps(out, owner=True)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return cfg, payload, lock


def _digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def train(given: dict[str, Any], resume: bool = False,
          on_step: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Run (or continue) a training run described by CLI-style options; returns a summary."""
    cfg, payload, lock = prepare(given, resume)
    try:
        device = resolve_device(cfg.device, int(os.environ.get("LOCAL_RANK", "0")))
        env = init_distributed(device)
        try:
            return _run(cfg, payload, device, env, on_step)
        finally:
            shutdown(env)
    finally:
        if lock is not None:
            lock.release()


def _run(cfg: TrainConfig, payload: dict | None, device: torch.device, env: DistEnv,
         on_step: Callable[[dict], None] | None) -> dict[str, Any]:
    images = open_dataset(cfg.data, "train").head(cfg.subset)
    resolution = cfg.resolution or default_resolution(images.native_size)
    min_scale = cfg.min_scale or default_min_scale(images.native_size)
    arch = Arch.from_dict(cfg.arch) if cfg.arch is not None else None
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    model, ref = build_ssl_model(cfg.space, arch, cfg.ssl, cfg.temperature,
                                 cfg.target_momentum,
                                 cfg.init_from if payload is None else None)
    space = get_space(cfg.space) if ref is None else None
    if payload is not None and payload.get("space") != (cfg.space if ref is None else None):
        raise BadInput(f"checkpoint is from space {payload.get('space')!r}, not {cfg.space!r}")
    cuda = device.type == "cuda"
    # channels-last on every device: on CPU too it made a sandwich step faster (train_throughput)
    model.to(device, memory_format=torch.channels_last)
    optimizer, lr = build_optimizer(cfg.optimizer, model, cfg.batch_size * env.world, cfg.lr,
                                    cfg.weight_decay, model.objective.base_lr)
    workers = cfg.workers if cfg.workers is not None else (min(8, os.cpu_count() or 1)
                                                           if cuda else 0)
    flip = images.mirror_safe if cfg.flip is None else cfg.flip  # resolved once, recorded
    loader = ssl_loader(images, resolution, cfg.batch_size, cfg.seed, workers, env.rank,
                        env.world, min_scale, cfg.local_crops, cfg.local_resolution, flip)
    per_epoch = loader.sampler.per_epoch
    if per_epoch == 0:
        raise BadInput(f"--batch-size {cfg.batch_size} x {env.world} process(es) is more than "
                       f"the {len(images)} training images")
    total = cfg.epochs * per_epoch if cfg.max_steps is None else min(cfg.max_steps,
                                                                     cfg.epochs * per_epoch)
    warmup = min(int(round(cfg.warmup_epochs * per_epoch)), total // 2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(warmup, total))
    step = 0
    if payload is not None:
        restore(payload, model, optimizer, scheduler, Path(cfg.out) / CKPT_NAME)
        step = int(payload["step"])
    net: torch.nn.Module = model
    if env.active:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if cuda else None)
    if cfg.compile:
        net = torch.compile(net)

    out = Path(cfg.out)
    ckpt = out / CKPT_NAME
    names = ["loss_ssl"] if space is None else (
        ["loss_largest", "loss_smallest"] + [f"loss_sampled{i + 1}" for i in
                                             range(cfg.num_sampled)])
    metrics = None
    if env.main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.json", json.dumps(
            {**cfg.to_dict(), "resolution_used": resolution, "lr_used": lr,
             "total_steps": total, "min_scale_used": min_scale,
             "flip_used": flip,
             "world_size": env.world, "train_images": len(images),
             "skipped_images": images.skipped,
             # CPU kernels round differently per vector ISA: bit-identical re-runs need the same
             "cpu_capability": torch.backends.cpu.get_cpu_capability()}, indent=2) + "\n")
        metrics = MetricsCSV(out / "metrics.csv",
                             ["step", "epoch", "lr", "loss", *names, "images_per_s"],
                             resume_step=step if payload is not None else None)
    tb = _tensorboard(out) if env.main else None

    def save(at: int) -> None:
        if env.main:
            save_train_state(ckpt, config=cfg.to_dict(), ref=ref, space=cfg.space if ref is None
                             else None, model=model, optimizer=optimizer, scheduler=scheduler,
                             step=at, extra={"resolution": resolution, "epoch": at / per_epoch})

    autocast = (torch.autocast(device.type, dtype=torch.bfloat16)
                if uses_bf16(cfg.precision, cuda) else nullcontext())
    start_time, last_saved, rate, last = time.time(), step, 0.0, {}
    slow_steps = int(round(cfg.slow_start * total))  # the largest subnet alone (SlimCLR)
    model.train()
    stop = step >= total
    while not stop:
        epoch, first = divmod(step, per_epoch)
        set_epoch(loader, epoch, first)
        tick = time.time()
        for batch in loader:
            students = (sample_students(space, cfg.seed, step, cfg.num_sampled)
                        if space and step >= slow_steps else [])
            x1, x2, *local = (x.to(device, non_blocking=True, memory_format=torch.channels_last)
                              for x in batch)
            with autocast:
                loss, parts = net(x1, x2, students, local)
            if any_flag(env, not bool(torch.isfinite(loss).item()), device):
                raise RuntimeFailure(
                    f"loss became {loss.item()} at step {step + 1}; stopped. The last good "
                    f"checkpoint is {ckpt} (step {last_saved}); try a lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_grad > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            optimizer.step()
            scheduler.step()
            step += 1
            if env.active:  # log the mean over ranks
                torch.distributed.all_reduce(parts)
                parts = parts / env.world
            model.objective.update_target(model.backbone, model.objective.projector,
                                          step / total)
            now = time.time()
            speed = x1.shape[0] * env.world / max(now - tick, 1e-9)
            rate = speed if rate == 0 else 0.9 * rate + 0.1 * speed
            tick = now
            last = {"step": step, "epoch": round(step / per_epoch, 4),
                    "lr": scheduler.get_last_lr()[0], "loss": float(parts.sum().item()),
                    **dict(zip(names, padded(parts.tolist(), len(names)), strict=True)),
                    "images_per_s": round(speed, 2)}
            if metrics is not None and step % cfg.log_every == 0:
                metrics.write(last)
                if tb is not None:
                    for k in ("loss", *names, "lr", "images_per_s"):
                        tb.add_scalar(k, last[k], step)
            if on_step is not None and env.main:
                on_step({**last, "total": total, "images_per_s": rate})
            stop = step >= total or any_flag(
                env, cfg.time_limit is not None and now - start_time > cfg.time_limit, device)
            if step % cfg.ckpt_every == 0 or step % per_epoch == 0 or stop:
                save(step)
                last_saved = step
            if stop:
                break
    if metrics is not None:
        metrics.close()
    if tb is not None:
        tb.close()
    if env.active:  # DDP syncs gradients; BN statistics follow rank 0 as in its forward
        for buffer in model.buffers():
            torch.distributed.broadcast(buffer, 0)
    if last_saved != step:
        save(step)
    digests = gather_objects(env, _digest(model.backbone))
    skipped = images.skipped + sum(gather_objects(env, images.decode_failures))
    return {"out": str(out), "checkpoint": str(ckpt), "kind": "supernet" if ref is None
            else "standalone", "space": cfg.space, "ssl": cfg.ssl, "steps": step,
            "total_steps": total, "epochs": round(step / per_epoch, 4),
            "resolution": resolution, "lr": lr, "train_images": len(images),
            "skipped_images": skipped, "world_size": env.world,
            "final_loss": last.get("loss"), "losses": {n: last.get(n) for n in names},
            "images_per_s": round(rate, 2), "seconds": round(time.time() - start_time, 2),
            "weights_digest": digests[0], "rank_digests": digests, "rank": env.rank}


def padded(losses: list[float], n: int) -> list[float]:
    """Per-subnet losses of a step, NaN for students that did not train (slow start)."""
    return [float(v) for v in losses] + [float("nan")] * (n - len(losses))


def _tensorboard(out: Path):
    """A TensorBoard writer when tensorboard is installed (optional)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(out / "tb"))
