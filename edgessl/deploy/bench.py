"""``edgessl bench``: latency of several models measured side by side on one backend.

Models are prepared first, then warmed up and timed in interleaved rounds (each round runs
every model once, in a rotating order), so drift in machine load hits all of them alike; the
report gives median/p90/p99 latency, throughput, and each model's ratio to the first.

Backends live in :data:`BACKENDS` (one entry each: what model kinds it runs and how).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgessl.errors import BadInput

Runner = Callable[[], None]


# ---- what a MODEL string is -------------------------------------------------------------------
@dataclass
class Target:
    """A model to time: an ONNX file, a TensorRT engine, or a PyTorch module (Source)."""

    label: str
    kind: str  # "onnx" | "engine" | "module"
    path: Path | None = None
    source: Any = None  # edgessl.deploy.sources.Source for "module"
    resolution: int | None = None
    info: dict[str, Any] = field(default_factory=dict)


ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
KIND_NAMES = {"onnx": "an ONNX file", "engine": "a TensorRT engine",
              "module": "a PyTorch model (result folder, checkpoint, arch JSON, baseline)"}


def _onnx_input(path: Path) -> tuple[list[int | str], str]:
    from edgessl.deploy.onnx import describe_onnx

    try:
        desc = describe_onnx(path)
    except Exception as exc:  # onnx raises DecodeError and friends for foreign files
        raise BadInput(f"{path} is not a readable ONNX file ({type(exc).__name__})") from None
    inp = desc["inputs"][0]
    return inp["shape"], inp["dtype"]


def resolve_target(text: str, resolution: int | None = None) -> Target:
    """MODEL -> :class:`Target`: an ONNX file, an engine, an export folder (its model.onnx), a
    result folder, a checkpoint, an arch JSON, or a baseline name."""
    from edgessl.deploy.sources import resolve_source

    path = Path(text)
    if path.is_dir() and not (path / "best.ckpt").exists() and (path / "model.onnx").is_file():
        path = path / "model.onnx"
    if path.is_file() and path.suffix == ".onnx":
        shape, dtype = _onnx_input(path)
        res = shape[-1] if isinstance(shape[-1], int) else None
        return Target(str(text), "onnx", path=path, resolution=res,
                      info={"input_shape": shape, "dtype": dtype})
    if path.is_file() and path.suffix in ENGINE_SUFFIXES:
        return Target(str(text), "engine", path=path)
    src = resolve_source(text, resolution)
    return Target(src.name, "module", source=src, resolution=src.resolution)


# ---- backends -------------------------------------------------------------------------------
@dataclass
class BenchConfig:
    batch: int = 1
    threads: int | None = None
    resolution: int = 224
    workdir: Path = Path(".")


@dataclass(frozen=True)
class Backend:
    """One way of running models: which target kinds it takes and how to make a runner."""

    name: str
    kinds: tuple[str, ...]
    unavailable: Callable[[], str | None]
    prepare: Callable[[Target, BenchConfig], Runner]


def _module_for(t: Target) -> Any:
    if t.kind != "module":
        raise BadInput(f"{t.label}: a {t.kind} file cannot run on a PyTorch backend; give a "
                       "result folder, checkpoint, arch JSON or baseline name")
    return t.source.module


def _torch_runner(device: str) -> Callable[[Target, BenchConfig], Runner]:
    def prepare(t: Target, cfg: BenchConfig) -> Runner:
        import torch

        from edgessl.deploy.sources import sample_images

        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        model = _module_for(t).to(device).eval()
        x = torch.from_numpy(sample_images(cfg.batch, cfg.resolution)).to(device)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

        def run() -> None:
            with torch.inference_mode():
                model(x)
            sync()

        return run

    return prepare


def _onnx_file_for(t: Target, cfg: BenchConfig) -> Path:
    """The target's ONNX file, exporting a module (static batch) into the work folder."""
    from edgessl.deploy.onnx import export_onnx

    if t.kind == "onnx":
        shape = t.info["input_shape"]
        if isinstance(shape[0], int) and shape[0] != cfg.batch:
            raise BadInput(f"{t.label} has a fixed batch of {shape[0]}; use --batch {shape[0]} "
                           "or export with --dynamic-batch")
        if isinstance(shape[-1], int) and shape[-1] != cfg.resolution:
            raise BadInput(f"{t.label} takes {shape[-1]}x{shape[-1]} images, not "
                           f"--resolution {cfg.resolution}")
        return t.path
    if t.kind != "module":
        raise BadInput(f"{t.label}: a TensorRT engine runs only on the tensorrt backend")
    safe = "".join(c if c.isalnum() else "_" for c in t.label)[:60]
    path = cfg.workdir / f"{safe}_{id(t)}.onnx"
    return export_onnx(t.source.module, path, cfg.resolution, dynamic_batch=cfg.batch != 1)


def _ort_runner(provider: str) -> Callable[[Target, BenchConfig], Runner]:
    def prepare(t: Target, cfg: BenchConfig) -> Runner:
        from edgessl.deploy.onnx import ort_session
        from edgessl.deploy.sources import sample_images

        session = ort_session(_onnx_file_for(t, cfg), (provider,), cfg.threads)
        inp = session.get_inputs()[0]
        x = sample_images(cfg.batch, cfg.resolution)
        if inp.type == "tensor(float16)":
            x = x.astype(np.float16)
        feed = {inp.name: x}

        def run() -> None:
            session.run(None, feed)

        return run

    return prepare


def _ort_unavailable(provider: str) -> Callable[[], str | None]:
    def check() -> str | None:
        import onnxruntime as ort

        if provider not in ort.get_available_providers():
            return (f"onnxruntime has no {provider} here (install onnxruntime-gpu and use a "
                    "machine with a CUDA device)")
        return None

    return check


def _cuda_unavailable() -> str | None:
    import torch

    return None if torch.cuda.is_available() else "no CUDA device is available to PyTorch"


def _trt_unavailable() -> str | None:
    from edgessl.deploy.tensorrt import tensorrt_available

    return tensorrt_available() or _cuda_unavailable()


def _trt_prepare(t: Target, cfg: BenchConfig) -> Runner:
    from edgessl.deploy import tensorrt as dtrt

    engine = t.path
    if t.kind != "engine":
        onnx_path = _onnx_file_for(t, cfg)
        profile = dtrt.profile_for(onnx_path, cfg.batch, max(cfg.batch, 1))
        plan = dtrt.plan_build(dtrt.tensorrt_major(), False, onnx_path, None)
        engine = dtrt.build_engine(plan, profile, onnx_path.with_suffix(".engine"))
    return dtrt.TrtRunner(engine, cfg.batch)


BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("onnxruntime-cpu", ("onnx", "module"), lambda: None,
            _ort_runner("CPUExecutionProvider")),
    Backend("onnxruntime-cuda", ("onnx", "module"), _ort_unavailable("CUDAExecutionProvider"),
            _ort_runner("CUDAExecutionProvider")),
    Backend("torch-cpu", ("module",), lambda: None, _torch_runner("cpu")),
    Backend("torch-cuda", ("module",), _cuda_unavailable, _torch_runner("cuda")),
    Backend("tensorrt", ("engine", "onnx", "module"), _trt_unavailable, _trt_prepare),
)}


def get_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise BadInput(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
    backend = BACKENDS[name]
    reason = backend.unavailable()
    if reason:
        raise BadInput(f"backend {name} is not available: {reason}")
    return backend


# ---- timing ---------------------------------------------------------------------------------
def summarize(times_s: list[float], batch: int) -> dict[str, float]:
    """Latency statistics in milliseconds and throughput at the median."""
    t = np.asarray(times_s) * 1e3
    median = float(np.median(t))
    return {"median_ms": median, "p90_ms": float(np.percentile(t, 90)),
            "p99_ms": float(np.percentile(t, 99)), "mean_ms": float(t.mean()),
            "min_ms": float(t.min()), "std_ms": float(t.std()),
            "throughput_ips": batch / (median / 1e3) if median > 0 else float("inf")}


def time_interleaved(runners: list[Runner], runs: int, warmup: int,
                     on_round: Callable[[int], None] | None = None) -> list[list[float]]:
    """Warm each runner up, then ``runs`` rounds; round r starts at runner r mod n."""
    import time

    n = len(runners)
    for _ in range(warmup):
        for run in runners:
            run()
    times: list[list[float]] = [[] for _ in runners]
    for r in range(runs):
        for k in range(n):
            i = (r + k) % n
            t0 = time.perf_counter()
            runners[i]()
            times[i].append(time.perf_counter() - t0)
        if on_round:
            on_round(r)
    return times


def bench(models: list[str], backend: str = "onnxruntime-cpu", batch: int = 1,
          threads: int | None = None, runs: int = 50, warmup: int = 10,
          resolution: int | None = None, on_round: Callable[[int], None] | None = None,
          on_prepare: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Time ``models`` side by side; the first one is the reference of the ratios.

    The resolution is ``resolution``, else the first model's (its ONNX input, its Arch, 224 for
    a baseline); every model is measured at that resolution.
    """
    for name, value, low in (("--batch", batch, 1), ("--runs", runs, 3), ("--warmup", warmup, 0),
                             ("--threads", 1 if threads is None else threads, 1)):
        if value < low:
            raise BadInput(f"{name} {value} must be at least {low}")
    if not models:
        raise BadInput("no model to benchmark")
    be = get_backend(backend)
    first = resolve_target(models[0], resolution)
    res = resolution or first.resolution or 224
    targets = [first, *(resolve_target(m, res) for m in models[1:])]
    for t in targets:
        if t.kind not in be.kinds:
            raise BadInput(f"{t.label}: backend {backend} cannot run {KIND_NAMES[t.kind]} "
                           f"(it takes {', '.join(KIND_NAMES[k] for k in be.kinds)})")
    with tempfile.TemporaryDirectory(prefix="edgessl-bench-") as tmp:
        cfg = BenchConfig(batch, threads, res, Path(tmp))
        runners = []
        for t in targets:
            if on_prepare:
                on_prepare(t.label)
            runners.append(be.prepare(t, cfg))
        times = time_interleaved(runners, runs, warmup, on_round)
    rows = []
    for t, ts in zip(targets, times, strict=True):
        rows.append({"model": t.label, "kind": t.kind, **summarize(ts, batch)})
    ref = rows[0]["median_ms"]
    for row in rows:
        row["ratio"] = row["median_ms"] / ref if ref > 0 else float("nan")
    return {"backend": backend, "batch": batch, "threads": threads, "runs": runs,
            "warmup": warmup, "resolution": res, "machine": machine(), "results": rows}


def machine() -> dict[str, Any]:
    """CPU model and core count (what BENCHMARKS.md records with each figure)."""
    import os

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "nproc": os.cpu_count()}
