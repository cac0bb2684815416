"""Measurement backends: a registry from name to how a module becomes a timed callable.

ONNX backends export each module with :func:`export_onnx` and time it with the torch-free
runners (the same code the device kit uses); torch backends time the module directly. CUDA,
TensorRT and the onnxruntime GPU providers are imported lazily; a missing one is BadInput.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from edgessl.errors import BadInput, RuntimeFailure
from edgessl.profile import runners
from edgessl.profile.blocks import export_onnx


@dataclass(frozen=True)
class Backend:
    """One way to run a block: ``runtime`` is a runners runtime for ONNX backends, else None."""

    name: str
    device: str
    runtime: str | None

    @property
    def onnx(self) -> bool:
        return self.runtime is not None

    def check(self) -> None:
        """BadInput if this backend cannot run here (no GPU, TensorRT or provider)."""
        try:
            if self.runtime:
                runners.runtime_version(self.runtime)
                if self.runtime.startswith("onnxruntime-") and self.device == "cuda":
                    import onnxruntime as ort

                    if "CUDAExecutionProvider" not in ort.get_available_providers():
                        raise runners.RunnerUnavailable(
                            "onnxruntime has no CUDAExecutionProvider here: "
                            "pip install onnxruntime-gpu")
            if self.device == "cuda":
                import torch

                if not torch.cuda.is_available():
                    raise runners.RunnerUnavailable("no CUDA device is available")
        except runners.RunnerUnavailable as exc:
            raise BadInput(f"backend {self.name!r}: {exc}") from None

    def version(self) -> str:
        if self.runtime:
            name = "tensorrt" if self.runtime == "tensorrt" else "onnxruntime"
            return f"{name} {runners.runtime_version(self.runtime)}"
        import torch

        return f"torch {torch.__version__}"

    def describe_device(self) -> str:
        text = runners.describe_host()
        if self.device == "cuda":
            import torch

            text = f"{torch.cuda.get_device_name(0)}; host {text}"
        return text

    def runner(self, module: nn.Module, shape: tuple[int, ...], threads: int,
               dtype: str) -> Callable[[], None]:
        """A zero-argument callable that runs ``module`` once on a fixed random input."""
        try:
            if self.runtime:
                return runners.make_runner(self.runtime, export_onnx(module, shape, dtype),
                                           threads, dtype)
            return _torch_runner(module, shape, threads, dtype, self.device)
        except runners.RunnerUnavailable as exc:
            raise BadInput(f"backend {self.name!r}: {exc}") from None
        except (RuntimeFailure, BadInput):
            raise
        except Exception as exc:  # noqa: BLE001 - a runtime refusing a model: one line
            raise RuntimeFailure(f"backend {self.name!r} cannot run {type(module).__name__} "
                                 f"at input {tuple(shape)} ({dtype}): {exc}") from None


def _torch_runner(module: nn.Module, shape, threads: int, dtype: str, device: str):
    import torch

    torch.set_num_threads(threads)
    torch_dtype = {"fp32": torch.float32, "fp16": torch.float16}[dtype]
    module = module.to(device=device, dtype=torch_dtype).eval()
    x = torch.randn(*shape, device=device, dtype=torch_dtype)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def run() -> None:
        with torch.inference_mode():
            module(x)
        sync()

    return run


BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("onnxruntime-cpu", "cpu", "onnxruntime-cpu"),
    Backend("onnxruntime-cuda", "cuda", "onnxruntime-cuda"),
    Backend("torch-cpu", "cpu", None),
    Backend("torch-cuda", "cuda", None),
    Backend("tensorrt", "cuda", "tensorrt"),
)}


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise BadInput(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}") from None


def default_clock(backend: Backend, threads: int) -> str:
    """Thread CPU time for one-thread CPU backends (immune to other processes on a shared
    machine, equal to wall time on an idle one); wall-clock time otherwise."""
    return "cpu" if backend.device == "cpu" and threads == 1 else "wall"
