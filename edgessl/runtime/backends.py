"""The one backend registry: name -> what a backend runs, whether it can run here, its version,
the device description, the default clock, and the session that times a model on it.

``edgessl profile``, ``edgessl bench``, the latency-table format (its ``backend`` field) and the
device kit all read :data:`BACKENDS`. A backend takes model kinds: ``onnx`` (an ONNX file or its
bytes), ``engine`` (a serialized TensorRT engine) or ``module`` (a PyTorch module); turning a
network into an ONNX file is edgessl's exporter's job, not this package's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import Unavailable
from .host import describe_host
from .sessions import OrtSession, TorchSession, import_onnxruntime, ort_unavailable

TAKES = {"onnxruntime": ("onnx",), "tensorrt": ("onnx", "engine"), "torch": ("module",)}


def _torch_unavailable(device: str) -> str | None:
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed"
    if device == "cuda" and not torch.cuda.is_available():
        return "no CUDA device is available to PyTorch"
    return None


def _gpu_name() -> str:
    """The first CUDA device's name, from PyTorch or the CUDA runtime bindings if either is
    here (the device kit may have neither)."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except ImportError:
        pass
    try:
        from .trt import load_cudart

        cudart = load_cudart()
        err, prop = cudart.cudaGetDeviceProperties(0)
        if int(getattr(err, "value", err)) == 0:
            name = prop.name
            return name.decode(errors="replace").strip("\x00") if isinstance(name, bytes) \
                else str(name)
    except (Unavailable, AttributeError, TypeError, ValueError):
        pass
    return "CUDA device"


@dataclass(frozen=True)
class Backend:
    """One way of running models: ``engine`` (onnxruntime, tensorrt, torch) on ``device``."""

    name: str
    engine: str
    device: str

    @property
    def takes(self) -> tuple[str, ...]:
        """Model kinds this backend runs: 'onnx', 'engine', 'module'."""
        return TAKES[self.engine]

    def unavailable(self) -> str | None:
        """Why this backend cannot run here (missing library, provider or GPU), else None."""
        if self.engine == "onnxruntime":
            return ort_unavailable(self.device)
        if self.engine == "tensorrt":
            from .trt import load_cudart, load_tensorrt

            try:
                load_tensorrt()
                load_cudart()
            except Unavailable as exc:
                return str(exc)
            return None
        return _torch_unavailable(self.device)

    def check(self) -> None:
        """:class:`Unavailable` naming this backend when it cannot run here."""
        reason = self.unavailable()
        if reason:
            raise Unavailable(f"backend {self.name} is not available: {reason}")

    def version(self) -> str:
        """The runtime and its version, e.g. ``onnxruntime 1.32.0`` (a table's
        ``backend_version``)."""
        if self.engine == "onnxruntime":
            return f"onnxruntime {import_onnxruntime().__version__}"
        if self.engine == "tensorrt":
            from .trt import tensorrt_version

            return tensorrt_version()
        import torch

        return f"torch {torch.__version__}"

    def describe_device(self) -> str:
        """The host, with the GPU first for CUDA backends (a table's ``device``)."""
        host = describe_host()
        return f"{_gpu_name()}; host {host}" if self.device == "cuda" else host

    def default_clock(self, threads: int | None) -> str:
        """Thread CPU time for one-thread CPU backends (immune to other processes on a shared
        machine, equal to wall time on an idle one); wall-clock time otherwise."""
        return "cpu" if self.device == "cpu" and threads == 1 else "wall"

    def session(self, model: Any, *, kind: str = "onnx", threads: int | None = 1,
                batch: int | None = None, seed: int = 0, shape: tuple[int, ...] | None = None,
                dtype: str = "fp32"):
        """A timed session of ``model`` (see :mod:`.sessions`): ONNX bytes or path for
        onnxruntime; ONNX (built strongly typed) or engine for tensorrt; a module with its
        input ``shape`` and ``dtype`` for torch. A symbolic batch is set to ``batch``."""
        if kind not in self.takes:
            raise ValueError(f"backend {self.name} does not run {kind} models")
        if self.engine == "onnxruntime":
            return OrtSession(model, self.device, threads, batch, seed)
        if self.engine == "tensorrt":
            from .trt import TrtSession, build_serialized

            engine = build_serialized(model, batch=batch) if kind == "onnx" else model
            return TrtSession(engine, batch, seed)
        return TorchSession(model, shape, dtype, self.device, threads, seed)


BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("onnxruntime-cpu", "onnxruntime", "cpu"),
    Backend("onnxruntime-cuda", "onnxruntime", "cuda"),
    Backend("torch-cpu", "torch", "cpu"),
    Backend("torch-cuda", "torch", "cuda"),
    Backend("tensorrt", "tensorrt", "cuda"),
)}
KIT_PROVIDERS = {"cpu": "onnxruntime-cpu", "cuda": "onnxruntime-cuda", "tensorrt": "tensorrt"}


def get_backend(name: str) -> Backend:
    """The backend called ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}") from None


__all__ = ["Backend", "BACKENDS", "KIT_PROVIDERS", "get_backend"]
