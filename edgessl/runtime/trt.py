"""TensorRT: build an engine from ONNX, load one, and run it on a private CUDA stream.

The only module of edgessl and the device kit that calls the TensorRT API (tests/
test_tensorrt_conformance.py checks every call against the binding sources of 10.x and 11.x).
Torch-free: device memory, copies and the stream come from the CUDA runtime bindings
(``cuda-python``), as in NVIDIA's ``samples/python/common_runtime.py``.

API references (NVIDIA/TensorRT ``python/src/infer/pyCore.cpp`` and
``python/src/parsers/pyOnnx.cpp`` at release/10.0, v10.16 and v11.1):
- ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` exists from 10.0 on and in 11.x, where every
  network is strongly typed anyway; edgessl builds strongly typed networks by default, so the
  ONNX file's types fix the precision: fp32, fp16 (``export --fp16``) or INT8 (a QDQ file).
- ``BuilderFlag.FP16``/``INT8`` exist in 10.x only (deprecated since 10.12, gone in 11.0): they
  are used for the weakly typed 10.x builds that must be asked for, behind a version check.
- ``execute_async_v3(stream_handle)``, ``set_input_shape``, ``set_tensor_address``, ``parse``
  and ``add_optimization_profile`` report failure by their return value (False, or -1), not
  by raising; ``deserialize_cuda_engine``, ``create_execution_context`` and
  ``build_serialized_network`` return None. Every one is checked here.
- TensorRT warns that ``enqueueV3`` on the default stream adds synchronisations: sessions run
  on a stream of their own, synchronised before timing starts and after every call.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import SessionError, Unavailable, one_line
from .sessions import concrete_shape, random_input

INSTALL = ("TensorRT is not installed: pip install tensorrt cuda-python (on a Jetson: JetPack's "
           "python3-libnvinfer and pip install cuda-python)")
WEAK_PRECISIONS = ("fp16", "int8")


def load_tensorrt():
    """The ``tensorrt`` module, or :class:`Unavailable`."""
    try:
        import tensorrt as trt
    except ImportError:
        raise Unavailable(INSTALL) from None
    return trt


def load_cudart():
    """The CUDA runtime bindings: ``cuda.bindings.runtime`` (cuda-python >= 12.6), else the older
    ``cuda.cudart``; :class:`Unavailable` when neither imports."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError:
            raise Unavailable("TensorRT timing needs the CUDA runtime bindings: pip install "
                              "cuda-python") from None
    return cudart


def major_version(trt) -> int:
    """TensorRT's major version (10, 11, ...)."""
    return int(trt.__version__.split(".")[0])


def cuda_call(cudart, result, what: str):
    """Check a cuda-python call's ``(error, *values)`` result; :class:`SessionError` naming
    ``what`` and the CUDA error on failure."""
    err, *rest = result if isinstance(result, tuple) else (result,)
    code = int(getattr(err, "value", err))
    if code != 0:
        name = cudart.cudaGetErrorName(err)[1]
        raise SessionError(f"CUDA error {code} ({name}) in {what}")
    return rest[0] if len(rest) == 1 else (rest or None)


def build_serialized(onnx: bytes | str | os.PathLike, *, shapes: tuple | None = None,
                     batch: int | None = None, strongly_typed: bool = True,
                     weak_precision: tuple[str, ...] = (), workspace_mb: int = 1024,
                     verbose: bool = False) -> bytes:
    """A serialized engine built from an ONNX file or its bytes.

    ``shapes``: ``(input name, min, opt, max)`` of the optimisation profile a symbolic batch
    needs; without it, a symbolic batch is fixed at ``batch`` (default 1) by a one-shape
    profile. Strongly typed (default): precisions follow the ONNX types. ``strongly_typed=False``
    with ``weak_precision`` ('fp16' and/or 'int8'): the weakly typed 10.x build with those
    builder flags (INT8 is mandatory there for a QDQ file); TensorRT 11 has no such mode.
    """
    trt = load_tensorrt()
    major = major_version(trt)
    if not strongly_typed and major >= 11:
        raise Unavailable(f"TensorRT {trt.__version__} builds strongly typed networks only "
                          "(weakly typed builds and their precision flags ended with 10.x)")
    bad = [p for p in weak_precision if p not in WEAK_PRECISIONS]
    if bad or (weak_precision and strongly_typed):
        raise ValueError(f"weak_precision {weak_precision!r} needs strongly_typed=False and "
                         f"values from {WEAK_PRECISIONS}")
    label = "the model" if isinstance(onnx, bytes) else str(onnx)
    logger = trt.Logger(trt.Logger.WARNING if verbose else trt.Logger.ERROR)
    try:
        builder = trt.Builder(logger)
    except (RuntimeError, TypeError) as exc:  # no GPU or driver: the factory returns null
        raise Unavailable(f"TensorRT cannot start a builder here: {one_line(exc)}") from None
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    parsed = (parser.parse(onnx) if isinstance(onnx, bytes)
              else parser.parse_from_file(str(onnx)))
    if not parsed:
        errors = "; ".join(str(parser.get_error(i).desc()) for i in range(parser.num_errors))
        raise SessionError(f"TensorRT cannot parse {label}: {one_line(errors or 'no reason')}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    tensor = network.get_input(0)
    dims = tuple(tensor.shape)
    if shapes is None and any(d < 0 for d in dims):
        fixed = (batch or 1, *dims[1:])
        shapes = (tensor.name, fixed, fixed, fixed)
    if shapes is not None:
        name, lo, opt, hi = shapes
        profile = builder.create_optimization_profile()
        try:
            profile.set_shape(name, lo, opt, hi)  # raises RuntimeError on inconsistent shapes
        except RuntimeError as exc:
            raise SessionError(f"TensorRT profile for {name!r}: {one_line(exc)}") from None
        if config.add_optimization_profile(profile) < 0:
            raise SessionError(f"TensorRT refused the optimisation profile {shapes}")
    if weak_precision:
        if major < 11:
            # 10.x weakly typed precision flags (BuilderFlag in pyCore.cpp, release/10.0 to
            # v10.16; absent from v11.0 on)
            builder_flags = {"fp16": trt.BuilderFlag.FP16, "int8": trt.BuilderFlag.INT8}
            for precision in weak_precision:
                config.set_flag(builder_flags[precision])
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise SessionError(f"TensorRT failed to build an engine from {label}")
    return bytes(serialized)


class TrtSession:
    """A deserialized engine with device buffers and a private CUDA stream.

    The input is seeded random data copied to the device once (synchronised before the first
    call); each call enqueues the engine on the session's stream and waits for it. A symbolic
    batch is set to ``batch`` (default 1) and checked against the engine's profile. ``close``
    (also on garbage collection) frees the buffers and destroys the stream.
    """

    def __init__(self, engine: bytes | str | os.PathLike, batch: int | None = None,
                 seed: int = 0):
        trt = load_tensorrt()
        self.cudart = cudart = load_cudart()
        self.buffers: list[Any] = []
        self.stream = None
        label = "the engine" if isinstance(engine, bytes) else str(engine)
        if isinstance(engine, bytes):
            data = engine
        else:
            with open(engine, "rb") as f:
                data = f.read()
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
        self.engine = self.runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise SessionError(f"{label} is not a TensorRT engine for this TensorRT version "
                               "and GPU")
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise SessionError(f"TensorRT cannot create an execution context for {label}")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        if len(inputs) != 1:
            raise SessionError(f"{label}: expected one input, found {len(inputs)}")
        self.input = inputs[0]
        dims = list(self.engine.get_tensor_shape(self.input))
        self.input_shape = concrete_shape(dims, batch, label)
        if dims[0] < 0:
            lo, _, hi = self.engine.get_tensor_profile_shape(self.input, 0)
            if not self.context.set_input_shape(self.input, self.input_shape):
                raise SessionError(f"{label}: batch {self.input_shape[0]} is outside the "
                                   f"engine's profile (batch {lo[0]}..{hi[0]})")
        self.stream = cuda_call(cudart, cudart.cudaStreamCreate(), "cudaStreamCreate")
        for name in names:
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            shape = tuple(self.context.get_tensor_shape(name))
            nbytes = max(int(np.prod(shape)) * dtype.itemsize, 1)
            ptr = cuda_call(cudart, cudart.cudaMalloc(nbytes), "cudaMalloc")
            self.buffers.append(ptr)
            if not self.context.set_tensor_address(name, int(ptr)):
                raise SessionError(f"TensorRT refused the buffer of tensor {name!r}")
            if name == self.input:
                self.dtype = dtype.name
                self._x = random_input(self.input_shape, dtype, seed)
                cuda_call(cudart, cudart.cudaMemcpyAsync(
                    ptr, self._x.ctypes.data, self._x.nbytes,
                    cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream),
                    "cudaMemcpyAsync")
        self._handle = int(self.stream)
        cuda_call(cudart, cudart.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")

    def __call__(self) -> None:
        if not self.context.execute_async_v3(self._handle):
            raise SessionError("TensorRT execute_async_v3 failed (enqueue returned False)")
        cuda_call(self.cudart, self.cudart.cudaStreamSynchronize(self.stream),
                  "cudaStreamSynchronize")

    def close(self) -> None:
        """Free the device buffers and destroy the stream (once)."""
        cudart = self.cudart
        while self.buffers:
            cuda_call(cudart, cudart.cudaFree(self.buffers.pop()), "cudaFree")
        if self.stream is not None:
            stream, self.stream = self.stream, None
            cuda_call(cudart, cudart.cudaStreamDestroy(stream), "cudaStreamDestroy")

    def __del__(self) -> None:  # pragma: no cover - needs a GPU
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass


def tensorrt_version() -> str:
    """``tensorrt X.Y.Z``, or :class:`Unavailable`."""
    return f"tensorrt {load_tensorrt().__version__}"


__all__ = ["INSTALL", "load_tensorrt", "load_cudart", "major_version", "build_serialized",
           "TrtSession", "tensorrt_version", "cuda_call"]
