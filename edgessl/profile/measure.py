"""``edgessl profile``: measure a latency table on this device, resumably, then calibrate and
validate it on whole random subnets.

The table file itself is the checkpoint: it is rewritten atomically after every chunk of
entries (``complete: false`` until the last), and a run pointed at an existing file with the
same settings keeps what is there and measures only the rest.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgessl.arch import Arch
from edgessl.cost.latency import FORMAT, LatencyTable
from edgessl.deploy.bench import Backend, BenchConfig, Target, get_backend, module_session, prepare
from edgessl.errors import BadInput
from edgessl.profile.blocks import (
    Choices,
    build_module,
    enumerate_specs,
    input_shape,
    sample_arch,
)
from edgessl.runtime.timer import CLOCKS, entry, measure_chunked, time_interleaved
from edgessl.spaces import get_space

Progress = Callable[[str, int, int], None]
_MATCH = ("space", "backend", "threads", "batch", "dtype", "clock", "choices", "quantization")
PRECISIONS = ("fp32", "fp16", "int8")
SUBNET_CALIB_IMAGES = 16  # INT8 subnets: real calibration images, as export --int8 uses


@dataclass
class Settings:
    """Everything that defines a table (and how hard to measure it)."""

    space: str = "mobilenet"
    backend: str = "onnxruntime-cpu"
    resolutions: list[int] = field(default_factory=list)
    width_mults: list[float] = field(default_factory=list)
    kernels: list[int] = field(default_factory=list)
    expands: list[float] = field(default_factory=list)
    threads: int = 1
    batch: int = 1
    dtype: str = "fp32"
    clock: str = "auto"
    runs: int = 100
    rounds: int = 5
    warmup: int = 10
    chunk: int = 64
    validate: int = 0
    calibrate: int = 0
    net_runs: int = 40
    net_chunk: int = 64
    seed: int = 0

    def check(self) -> None:
        for name in ("threads", "batch", "runs", "rounds", "chunk", "net_runs", "net_chunk"):
            if getattr(self, name) < 1:
                flag = name.replace("_", "-")
                raise BadInput(f"--{flag} {getattr(self, name)} must be at least 1")
        for name in ("warmup", "validate", "calibrate", "seed"):
            if getattr(self, name) < 0:
                raise BadInput(f"--{name} {getattr(self, name)} must be at least 0")
        if self.dtype not in PRECISIONS:
            raise BadInput(f"--dtype {self.dtype!r} not supported; use fp32, fp16 or int8")
        if self.dtype == "int8" and self.backend.startswith("torch"):
            raise BadInput(f"--dtype int8 needs an ONNX backend (onnxruntime-cpu, "
                           f"onnxruntime-cuda, tensorrt), not {self.backend}")
        if self.clock not in ("auto", *CLOCKS):
            raise BadInput(f"--clock {self.clock!r}: use auto, wall or cpu")

    def choices(self) -> Choices:
        return Choices.of(get_space(self.space), self.resolutions, self.width_mults,
                          self.kernels, self.expands)

    def resolved_clock(self, backend: Backend) -> str:
        return backend.default_clock(self.threads) if self.clock == "auto" else self.clock


def pin_to_cpu(cpu: int) -> None:
    """Pin this process to CPU core ``cpu`` (``--pin-cpu``); BadInput if that cannot be done."""
    try:
        os.sched_setaffinity(0, {cpu})
    except (OSError, AttributeError, ValueError) as exc:
        raise BadInput(f"--pin-cpu {cpu}: {exc}") from None


def table_meta(s: Settings, backend: Backend, choices: Choices) -> dict:
    """The metadata DESIGN.md asks for (format, space, backend + version, device, ...)."""
    return {
        "format": FORMAT, "space": s.space, "backend": backend.name,
        "backend_version": backend.version(), "device": backend.describe_device(),
        "threads": s.threads, "batch": s.batch, "dtype": s.dtype,
        "clock": s.resolved_clock(backend),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "resolutions": list(choices.resolutions), "choices": choices.to_dict(),
        "timing": {"runs": s.runs, "rounds": s.rounds, "warmup": s.warmup,
                   "net_runs": s.net_runs, "seed": s.seed},
        **({"quantization": quantization(backend.name)} if s.dtype == "int8" else {}),
        "complete": False,
    }


def quantization(backend: str) -> dict:
    """What an INT8 table's ``quantization`` records: the scheme ``backend`` runs and how
    blocks and subnets were calibrated (:func:`edgessl.deploy.bench.model_bytes`,
    :func:`export_subnet`)."""
    from edgessl.deploy.int8 import DEFAULT_CALIB_DATA, SCHEMES, scheme_for, weight_bits

    scheme = scheme_for(backend)
    return {"scheme": SCHEMES[scheme].to_dict(), "method": "minmax",
            "weight_bits": weight_bits(scheme),
            "blocks": "calibrated on 4 seeded standard-normal inputs (the QDQ graph, and so "
                      "the timing, does not depend on calibration values)",
            "subnets": f"calibrated on {SUBNET_CALIB_IMAGES} {DEFAULT_CALIB_DATA} images, "
                       "quantized as edgessl export --int8 quantizes, calibrated with minmax "
                       "(the graph, and so the timing, is the same for every method)"}


def resume_or_new(out: Path, meta: dict) -> LatencyTable:
    """The table at ``out`` if its settings match (to resume), else a new empty one."""
    if not out.exists():
        return LatencyTable(dict(meta), {})
    old = LatencyTable.load(out)
    for key in _MATCH:
        if old.meta.get(key) != meta.get(key):
            raise BadInput(f"{out} exists with {key}={old.meta.get(key)!r}, not "
                           f"{meta.get(key)!r}; choose another --out or delete it")
    merged = {**meta, "date": old.meta.get("date", meta["date"]),
              "complete": old.meta.get("complete", False)}
    return LatencyTable(merged, old.entries, old.overhead, old.validation, old.networks)


def shuffled(items: list, seed: int) -> list:
    """A seeded permutation. Entries and subnets are measured in this order so that a slow
    spell of a shared machine hits a mix of resolutions, widths and roles, not one group."""
    order = np.random.default_rng([seed, 7]).permutation(len(items))
    return [items[i] for i in order]


def plan_networks(s: Settings, choices: Choices) -> list[dict]:
    """Seeded random subnets per resolution: ``calibrate`` to fit, ``validate`` held out
    (in measuring order: shuffled)."""
    space = get_space(s.space)
    nets = []
    for role, n, tag in (("calibrate", s.calibrate, 1), ("validate", s.validate, 2)):
        for r in choices.resolutions:
            rng = np.random.default_rng([s.seed, r, tag])
            nets += [{"role": role, "arch": sample_arch(space, choices, rng, r).to_dict()}
                     for _ in range(n)]
    return shuffled(nets, s.seed)


def net_id(net: dict) -> str:
    return net["role"] + ":" + json.dumps(net["arch"], sort_keys=True)


def export_subnet(arch: Arch, folder: Path, name: str, batch: int = 1,
                  dtype: str = "fp32", scheme: str = "u8s8") -> tuple[Target, Path]:
    """Subnet ``arch`` written exactly as ``edgessl export`` writes it (its arch JSON resolved
    by :func:`edgessl.deploy.sources.resolve_source`: seeded weights, BatchNorm calibrated; then
    :func:`edgessl.deploy.onnx.export_onnx`: opset 20, static batch 1 or a dynamic batch for
    ``batch > 1``, float16 for fp16; for int8 then quantized in ``scheme`` as ``export --int8``
    does, :func:`edgessl.deploy.int8.quantize_model`) as ``folder/name.onnx``; returns the
    ``bench`` target of that file and its path."""
    from edgessl.deploy.bench import resolve_target
    from edgessl.deploy.onnx import export_onnx
    from edgessl.deploy.sources import resolve_source

    folder.mkdir(parents=True, exist_ok=True)
    arch_file = folder / f"{name}.arch.json"
    arch.save(arch_file)
    src = resolve_source(str(arch_file))
    path = export_onnx(src.module, folder / f"{name}.onnx", src.resolution,
                       dynamic_batch=batch > 1, fp16=dtype == "fp16")
    if dtype == "int8":
        import onnx

        from edgessl.deploy.int8 import DEFAULT_CALIB_DATA, calibration_images, quantize_model

        x = calibration_images(DEFAULT_CALIB_DATA, SUBNET_CALIB_IMAGES, src.resolution)
        # minmax: the QDQ graph, and so the timing, is the same for every method, and it
        # calibrates about 4x faster than export's default (percentile)
        quantize_model(onnx.load(str(path)), path, x[:, None], scheme, "minmax")
    return resolve_target(str(path)), path


def subnet_session(backend: Backend, arch: Arch, batch: int, threads: int, dtype: str,
                   folder: Path, name: str, keep: bool = False):
    """A timed session of subnet ``arch``, made as ``edgessl bench`` makes one of the file
    ``edgessl export`` writes (:func:`export_subnet`, :func:`edgessl.deploy.bench.prepare`);
    the torch backends time the same module directly. The ONNX file is deleted once loaded
    unless ``keep``."""
    cfg = BenchConfig(batch, threads, arch.resolution, folder)
    if backend.engine == "torch":
        from edgessl.deploy.sources import resolve_source

        folder.mkdir(parents=True, exist_ok=True)
        arch.save(folder / f"{name}.arch.json")
        src = resolve_source(str(folder / f"{name}.arch.json"))
        return module_session(backend, src.module, (batch, 3, src.resolution, src.resolution),
                              threads, dtype)
    from edgessl.deploy.int8 import scheme_for

    target, path = export_subnet(arch, folder, name, batch, dtype, scheme_for(backend.name))
    session = prepare(backend, target, cfg)
    if not keep:
        path.unlink()
    return session


def measure_networks(table: LatencyTable, planned: list[dict], make: Callable[[dict], Callable],
                     save: Callable[[], None], runs: int, rounds: int, warmup: int, clock: str,
                     chunk: int = 16, progress: Progress | None = None) -> None:
    """Measure planned subnets end to end (resumable like the entries) into ``table.networks``."""
    have = {net_id(n) for n in table.networks}
    todo = [n for n in planned if net_id(n) not in have]
    total = len(planned)
    for start in range(0, len(todo), chunk):
        if progress:
            progress("networks", total - len(todo) + start, total)
        part = todo[start:start + chunk]
        sessions = {str(i): make(n) for i, n in enumerate(part)}
        timed = time_interleaved(sessions, runs, rounds, warmup, clock)
        for s in sessions.values():
            s.close()
        for i, n in enumerate(part):
            table.networks.append({**n, "measured": entry(timed[str(i)])})
        save()
    if progress:
        progress("networks", total, total)


def profile(s: Settings, out: str | Path, progress: Progress | None = None,
            pin_cpu: int | None = None) -> LatencyTable:
    """Measure (or finish measuring) the table at ``out``; calibrate and validate it when
    ``s.calibrate``/``s.validate`` ask for subnets. Returns the saved table."""
    s.check()
    out = Path(out)
    space, backend, choices = get_space(s.space), get_backend(s.backend), s.choices()
    if pin_cpu is not None:
        pin_to_cpu(pin_cpu)
    clock = s.resolved_clock(backend)
    table = resume_or_new(out, table_meta(s, backend, choices))
    specs = enumerate_specs(space, choices)

    def make(key: str):
        spec = specs[key]
        return module_session(backend, build_module(spec), input_shape(spec, s.batch),
                              s.threads, s.dtype)

    def save(done=None) -> None:
        table.save(out)

    measure_chunked(
        shuffled(list(specs), s.seed), make, table.entries, save, runs=s.runs,
        rounds=s.rounds, warmup=s.warmup, clock=clock, chunk=s.chunk,
        progress=(lambda d, t: progress("entries", d, t)) if progress else None)
    table.meta["complete"] = True
    table.save(out)
    planned = plan_networks(s, choices)
    if planned:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="edgessl-profile-") as tmp:
            def make_net(net: dict):
                return subnet_session(backend, Arch.from_dict(net["arch"]), s.batch, s.threads,
                                      s.dtype, Path(tmp), "net")

            measure_networks(table, planned, make_net, save, s.net_runs, s.rounds, s.warmup,
                             clock, chunk=s.net_chunk, progress=progress)
    if table.networks:
        from edgessl.profile.validate import finalize

        finalize(table)
        table.save(out)
    return table


__all__ = ["Settings", "profile", "pin_to_cpu", "shuffled", "table_meta", "resume_or_new",
           "plan_networks", "export_subnet", "subnet_session", "measure_networks", "net_id"]
