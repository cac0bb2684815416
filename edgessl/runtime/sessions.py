"""Inference sessions: one model, one fixed input, a call that runs it once and waits.

One rule for every backend (it used to differ between ``bench`` and ``profile``): the input is
seeded standard-normal data placed once where the backend computes (host memory for CPU, device
memory for CUDA and TensorRT) and the outputs are allocated once and reused, so a timed call is
the graph itself: no input copy, no output allocation, no host<->device transfer. For
onnxruntime that is IOBinding; TensorRT (:mod:`.trt`) and PyTorch hold device buffers alike. A
call returns when the result is ready (CUDA work is synchronised).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import SessionError, Unavailable, one_line

DTYPES = {"fp32": np.float32, "fp16": np.float16}
ORT_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
                 "tensorrt": "TensorrtExecutionProvider"}
ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def random_input(shape: tuple[int, ...], dtype: Any, seed: int = 0) -> np.ndarray:
    """Seeded standard-normal input (latency does not depend on the values of a CNN's input)."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def concrete_shape(dims: list, batch: int | None, label: str) -> tuple[int, ...]:
    """An input shape with a symbolic batch set to ``batch`` (default 1); other symbolic
    dimensions are a :class:`SessionError`."""
    shape = []
    for i, d in enumerate(dims):
        if isinstance(d, int) and d > 0:
            shape.append(d)
        elif i == 0:
            shape.append(batch or 1)
        else:
            raise SessionError(f"{label}: input dimension {i} is symbolic ({d!r}); only the "
                               "batch may be")
    return tuple(shape)


def import_onnxruntime():
    """The ``onnxruntime`` module, or :class:`Unavailable` with the install hint."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise Unavailable("onnxruntime is not installed: pip install onnxruntime") from None
    return ort


def ort_unavailable(provider: str) -> str | None:
    """Why onnxruntime cannot use ``provider`` ('cpu', 'cuda', 'tensorrt') here, or None."""
    try:
        ort = import_onnxruntime()
    except Unavailable as exc:
        return str(exc)
    name = ORT_PROVIDERS[provider]
    if name not in ort.get_available_providers():
        hint = " (install onnxruntime-gpu on a machine with a CUDA device)" if provider != "cpu" \
            else ""
        return f"onnxruntime {ort.__version__} has no {name} here{hint}"
    return None


class OrtSession:
    """An onnxruntime session over one model with its input and outputs bound once (IOBinding).

    ``threads``: intra-op threads (None: onnxruntime's default); execution is sequential with
    every graph optimisation on. ``batch`` fills a symbolic batch dimension (default 1).
    """

    def __init__(self, model: str | bytes | os.PathLike, provider: str = "cpu",
                 threads: int | None = 1, batch: int | None = None, seed: int = 0):
        ort = import_onnxruntime()
        reason = ort_unavailable(provider)
        if reason:
            raise Unavailable(reason)
        label = "the model" if isinstance(model, bytes) else str(model)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                model if isinstance(model, bytes) else str(model), opts,
                providers=[ORT_PROVIDERS[provider]])
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own Fail/InvalidGraph types
            raise SessionError(f"onnxruntime cannot load {label}: {one_line(exc)}") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise SessionError(f"{label}: expected one input, found {len(inputs)}")
        inp = inputs[0]
        if inp.type not in ORT_TYPES:
            raise SessionError(f"{label}: input type {inp.type} is not float32 or float16")
        self.input_shape = concrete_shape(list(inp.shape), batch, label)
        self.dtype = np.dtype(ORT_TYPES[inp.type]).name
        device = "cpu" if provider == "cpu" else "cuda"
        x = random_input(self.input_shape, ORT_TYPES[inp.type], seed)
        self._x = ort.OrtValue.ortvalue_from_numpy(x, device, 0)
        self.binding = self.session.io_binding()
        self.binding.bind_ortvalue_input(inp.name, self._x)
        outputs = self.session.get_outputs()
        for out in outputs:
            self.binding.bind_output(out.name, device)
        try:
            self.session.run_with_iobinding(self.binding)  # allocates the outputs once
        except Exception as exc:  # noqa: BLE001
            raise SessionError(f"onnxruntime cannot run {label}: {one_line(exc)}") from None
        values = self.binding.get_outputs()
        self.binding.clear_binding_outputs()
        for out, value in zip(outputs, values, strict=True):
            self.binding.bind_ortvalue_output(out.name, value)
        self._outputs = values
        self.binding.synchronize_inputs()

    def __call__(self) -> None:
        self.session.run_with_iobinding(self.binding)

    def close(self) -> None:
        """Nothing to release by hand: onnxruntime frees the session with the object."""


class TorchSession:
    """A PyTorch module in eval mode on one fixed input (``inference_mode``; a CUDA device is
    synchronised after every call). torch is imported here, not at module import."""

    def __init__(self, module: Any, shape: tuple[int, ...], dtype: str = "fp32",
                 device: str = "cpu", threads: int | None = None, seed: int = 0):
        import torch

        if threads:
            torch.set_num_threads(threads)
        torch_dtype = {"fp32": torch.float32, "fp16": torch.float16}[dtype]
        self._torch = torch
        self.module = module.to(device=device, dtype=torch_dtype).eval()
        self.x = torch.from_numpy(random_input(tuple(shape), np.float32, seed)).to(
            device=device, dtype=torch_dtype)
        self.input_shape = tuple(shape)
        self.dtype = np.dtype(DTYPES[dtype]).name
        self._sync = torch.cuda.synchronize if device == "cuda" else None
        if self._sync:
            self._sync()  # the input copy is done before the first timed call

    def __call__(self) -> None:
        with self._torch.inference_mode():
            self.module(self.x)
        if self._sync:
            self._sync()

    def close(self) -> None:
        """Nothing to release by hand."""


__all__ = ["DTYPES", "ORT_PROVIDERS", "OrtSession", "TorchSession", "random_input",
           "concrete_shape", "import_onnxruntime", "ort_unavailable"]
