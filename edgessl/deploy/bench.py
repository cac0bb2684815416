"""``edgessl bench``: latency of several models measured side by side on one backend.

Everything timed goes through the one runtime (:mod:`edgessl.runtime`): its backend registry,
its sessions (inputs and outputs bound once where the backend computes) and its timer (warm-up,
interleaved rounds with a rotating order, wall or thread-CPU clock), the same code that measures
latency tables, so a ``bench`` figure and a table's prediction are comparable. The report gives
median/p10/p90/p99 latency, throughput at the engine's real batch, each model's precision (fp32,
fp16, or int8 for a QDQ file such as ``export --int8``'s ``model_int8.onnx``: INT8 and fp32
files of one network compare side by side like any two models) and its ratio to the first.

:func:`module_session` is the one way a PyTorch module becomes a timed session on any backend
(exported with :func:`edgessl.deploy.onnx.onnx_model` for ONNX backends): ``edgessl profile``
times its blocks and subnets with it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgessl.errors import BadInput, RuntimeFailure
from edgessl.runtime import SessionError, Unavailable
from edgessl.runtime import backends as registry
from edgessl.runtime.host import machine
from edgessl.runtime.timer import CLOCKS, summarize, time_interleaved

Backend = registry.Backend


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
        from edgessl.deploy.tensorrt import onnx_precision

        shape, dtype = _onnx_input(path)
        res = shape[-1] if isinstance(shape[-1], int) else None
        return Target(str(text), "onnx", path=path, resolution=res,
                      info={"input_shape": shape, "dtype": dtype,
                            "precision": onnx_precision(path)})
    if path.is_file() and path.suffix in ENGINE_SUFFIXES:
        return Target(str(text), "engine", path=path)
    src = resolve_source(text, resolution)
    return Target(src.name, "module", source=src, resolution=src.resolution)


# ---- backends and sessions ----------------------------------------------------------------------
@dataclass
class BenchConfig:
    batch: int = 1
    threads: int | None = None
    resolution: int = 224
    workdir: Path = Path(".")


def get_backend(name: str) -> Backend:
    """The registry's backend ``name``; :class:`BadInput` when unknown or unavailable here."""
    try:
        backend = registry.get_backend(name)
        backend.check()
    except (ValueError, Unavailable) as exc:
        raise BadInput(str(exc)) from None
    return backend


def accepts(backend: Backend) -> tuple[str, ...]:
    """Target kinds ``bench`` can time on ``backend``: what it runs, plus PyTorch modules for
    the ONNX backends (exported first)."""
    return backend.takes if backend.engine == "torch" else (*backend.takes, "module")


@contextmanager
def runtime_errors() -> Iterator[None]:
    """The runtime's errors as edgessl's: a backend missing here is bad input (exit 2), a
    runtime refusing or failing to run a model a runtime failure (exit 1)."""
    try:
        yield
    except Unavailable as exc:
        raise BadInput(str(exc)) from None
    except SessionError as exc:
        raise RuntimeFailure(str(exc)) from None


def model_bytes(module: Any, input_shape: tuple[int, ...], dtype: str = "fp32",
                backend: str = "onnxruntime-cpu") -> bytes:
    """``module`` as ONNX bytes from the one exporter (:func:`edgessl.deploy.onnx.onnx_model`,
    static shape): float16 for ``dtype='fp16'``; for ``'int8'`` quantized as ``export --int8``
    quantizes, in the scheme ``backend`` runs (:func:`edgessl.deploy.int8.scheme_for`), on
    seeded random calibration inputs (:func:`edgessl.deploy.int8.random_calibration`: the QDQ
    graph, and so the timing, does not depend on the calibration values)."""
    from edgessl.deploy.onnx import onnx_model

    proto = onnx_model(module, input_shape, fp16=dtype == "fp16")
    if dtype != "int8":
        return proto.SerializeToString()
    from edgessl.deploy.int8 import quantized_bytes, random_calibration, scheme_for

    return quantized_bytes(proto, random_calibration(tuple(input_shape)), scheme_for(backend))


def module_session(backend: Backend, module: Any, input_shape: tuple[int, ...],
                   threads: int | None, dtype: str = "fp32", seed: int = 0):
    """A timed session of a PyTorch module on any backend: run directly on the torch backends,
    else exported by :func:`model_bytes` (fp32, fp16 or INT8) and loaded as ONNX (TensorRT:
    built strongly typed, so a QDQ model gives an INT8 engine)."""
    with runtime_errors():
        if backend.engine == "torch":
            if dtype == "int8":
                raise BadInput(f"backend {backend.name} runs fp32 and fp16 only; INT8 needs an "
                               "ONNX backend (onnxruntime-cpu, onnxruntime-cuda, tensorrt)")
            return backend.session(module, kind="module", threads=threads, shape=input_shape,
                                   dtype=dtype, seed=seed)
        data = model_bytes(module, input_shape, dtype, backend.name)
        return backend.session(data, kind="onnx", threads=threads, seed=seed)


def _check_onnx_target(t: Target, cfg: BenchConfig) -> None:
    shape = t.info["input_shape"]
    if isinstance(shape[0], int) and shape[0] != cfg.batch:
        raise BadInput(f"{t.label} has a fixed batch of {shape[0]}; use --batch {shape[0]} "
                       "or export with --dynamic-batch")
    if isinstance(shape[-1], int) and shape[-1] != cfg.resolution:
        raise BadInput(f"{t.label} takes {shape[-1]}x{shape[-1]} images, not "
                       f"--resolution {cfg.resolution}")


def _check_engine_session(t: Target, session: Any, cfg: BenchConfig) -> None:
    """An engine's batch and resolution, checked as the ONNX path checks them."""
    batch, res = session.input_shape[0], session.input_shape[-1]
    if batch != cfg.batch:
        raise BadInput(f"{t.label} is an engine with a fixed batch of {batch}; use --batch "
                       f"{batch} or build it with a dynamic batch")
    if res != cfg.resolution:
        raise BadInput(f"{t.label} takes {res}x{res} images, not --resolution {cfg.resolution}")


def prepare(backend: Backend, t: Target, cfg: BenchConfig):
    """A timed session of target ``t`` on ``backend`` (see :func:`module_session`)."""
    if t.kind == "module":
        return module_session(backend, t.source.module, (cfg.batch, 3, cfg.resolution,
                                                         cfg.resolution), cfg.threads)
    if t.kind == "onnx":
        _check_onnx_target(t, cfg)
    with runtime_errors():
        if backend.engine == "tensorrt":
            if t.kind == "onnx":
                from edgessl.deploy.tensorrt import engine_for

                safe = "".join(c if c.isalnum() else "_" for c in t.label)[-60:]
                engine = engine_for(t.path, cfg.batch, cfg.workdir / f"{safe}.engine")
            else:
                engine = t.path
            session = backend.session(engine, kind="engine", batch=cfg.batch)
            _check_engine_session(t, session, cfg)
            return session
        return backend.session(t.path, kind="onnx", threads=cfg.threads, batch=cfg.batch)


def _check_options(batch: int, threads: int | None, runs: int, rounds: int, warmup: int,
                   clock: str) -> None:
    for name, value, low in (("--batch", batch, 1), ("--runs", runs, 3), ("--warmup", warmup, 0),
                             ("--rounds", rounds, 1),
                             ("--threads", 1 if threads is None else threads, 1)):
        if value < low:
            raise BadInput(f"{name} {value} must be at least {low}")
    if clock not in ("auto", *CLOCKS):
        raise BadInput(f"--clock {clock!r}: use auto, wall or cpu")


def bench(models: list[str], backend: str = "onnxruntime-cpu", batch: int = 1,
          threads: int | None = None, runs: int = 50, warmup: int = 10,
          resolution: int | None = None, on_round: Callable[[int], None] | None = None,
          on_prepare: Callable[[str], None] | None = None, rounds: int = 10,
          clock: str = "auto") -> dict[str, Any]:
    """Time ``models`` side by side; the first one is the reference of the ratios.

    The resolution is ``resolution``, else the first model's (its ONNX input or engine, its
    Arch, 224 for a baseline); every model is measured at that resolution. ``runs`` timed calls
    per model over ``rounds`` interleaved rounds after ``warmup`` calls; clock ``auto`` is
    thread-CPU time for one-thread CPU backends (what latency tables use), else wall time.
    """
    _check_options(batch, threads, runs, rounds, warmup, clock)
    if not models:
        raise BadInput("no model to benchmark")
    be = get_backend(backend)
    first = resolve_target(models[0], resolution)
    targets = [first, *(resolve_target(m, resolution or first.resolution or 224)
                        for m in models[1:])]
    for t in targets:
        if t.kind not in accepts(be):
            raise BadInput(f"{t.label}: backend {backend} cannot run {KIND_NAMES[t.kind]} "
                           f"(it takes {', '.join(KIND_NAMES[k] for k in accepts(be))})")
    clock = be.default_clock(threads) if clock == "auto" else clock
    with tempfile.TemporaryDirectory(prefix="edgessl-bench-") as tmp:
        sessions = []
        res = resolution or first.resolution
        for t in targets:
            if on_prepare:
                on_prepare(t.label)
            cfg = BenchConfig(batch, threads, res or 224, Path(tmp))
            if res is None and t.kind == "engine":  # the first model is an engine: its size
                with runtime_errors():
                    session = be.session(t.path, kind="engine", batch=batch)
                cfg.resolution = session.input_shape[-1]
                _check_engine_session(t, session, cfg)
            else:
                session = prepare(be, t, cfg)
            sessions.append(session)
            res = cfg.resolution
        times = time_interleaved({str(i): s for i, s in enumerate(sessions)}, runs, rounds,
                                 warmup, clock, on_round)
        for s in sessions:
            s.close()
    rows = []
    for i, (t, s) in enumerate(zip(targets, sessions, strict=True)):
        stats = summarize(times[str(i)])
        real_batch = s.input_shape[0]
        rows.append({"model": t.label, "kind": t.kind,
                     "precision": t.info.get("precision", "fp32" if t.kind == "module" else None),
                     **stats,
                     "throughput_ips": real_batch / (stats["median_ms"] / 1e3)
                     if stats["median_ms"] > 0 else float("inf")})
    ref = rows[0]["median_ms"]
    for row in rows:
        row["ratio"] = row["median_ms"] / ref if ref > 0 else float("nan")
    return {"backend": backend, "batch": batch, "threads": threads, "runs": runs,
            "rounds": min(rounds, runs), "warmup": warmup, "clock": clock, "resolution": res,
            "machine": machine(), "results": rows}


__all__ = ["Target", "BenchConfig", "resolve_target", "get_backend", "accepts",
           "runtime_errors", "model_bytes", "module_session", "prepare", "bench"]
