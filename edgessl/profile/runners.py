"""Torch-free timing core: run one ONNX model (onnxruntime or TensorRT) and time it robustly.

This module imports only the standard library and numpy (onnxruntime, TensorRT and the CUDA
bindings lazily) and nothing from edgessl: ``edgessl profile --bundle`` copies it next to the
per-block ONNX files, so ``export/profile_device.py`` measures on the device with exactly the
code that measures on the host.

Timing is interleaved: every model gets ``runs`` timed calls split over ``rounds`` passes over
all models, so a burst of noise on a shared machine spreads over many entries instead of
spoiling one. The ``cpu`` clock (thread CPU time) ignores time the OS gives to other processes;
for one-thread CPU backends it equals wall-clock latency on an idle device.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np

DTYPES = {"fp32": np.float32, "fp16": np.float16}
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.thread_time}
ORT_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
                 "tensorrt": "TensorrtExecutionProvider"}


class RunnerUnavailable(RuntimeError):
    """A runtime (onnxruntime provider, TensorRT, CUDA bindings) is missing on this machine."""


def summarize(samples_ms: Iterable[float]) -> dict:
    """Median, 10th and 90th percentile (ms) and count of timed runs."""
    a = np.asarray(list(samples_ms), dtype=np.float64)
    p10, med, p90 = np.percentile(a, [10, 50, 90])
    return {"median_ms": round(float(med), 6), "p10_ms": round(float(p10), 6),
            "p90_ms": round(float(p90), 6), "count": int(a.size)}


def time_interleaved(runners: dict[str, Callable[[], None]], runs: int, rounds: int,
                     warmup: int, clock: str = "wall",
                     on_round: Callable[[int], None] | None = None) -> dict[str, list[float]]:
    """Timed calls (ms) of every runner: ``warmup`` untimed calls before each round's
    ``ceil(runs / rounds)`` timed ones, rounds interleaved over all runners."""
    now = CLOCKS[clock]
    per_round = -(-runs // rounds)
    samples: dict[str, list[float]] = {k: [] for k in runners}
    for r in range(rounds):
        for key, fn in runners.items():
            for _ in range(warmup if r == 0 else max(1, warmup // 4)):
                fn()
            out = samples[key]
            for _ in range(min(per_round, runs - len(out))):
                t0 = now()
                fn()
                out.append((now() - t0) * 1e3)
        if on_round:
            on_round(r)
    return samples


def write_json_atomic(path: str, obj) -> None:
    """Write JSON to ``path`` via a temporary file and a rename: never half a file."""
    import json
    import os
    import tempfile

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".partial.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def measure_chunked(keys: list[str], make: Callable[[str], Callable[[], None]],
                    done: dict[str, dict], save: Callable[[dict[str, dict]], None], *,
                    runs: int, rounds: int, warmup: int, clock: str, chunk: int = 64,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, dict]:
    """Measure every key not yet in ``done``, ``chunk`` at a time (interleaved within a chunk),
    calling ``save(done)`` after each chunk so an interrupted run resumes where it stopped."""
    todo = [k for k in keys if k not in done]
    total = len(keys)
    if progress:
        progress(total - len(todo), total)
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        runners = {}
        for key in part:
            runners[key] = make(key)
        samples = time_interleaved(runners, runs, rounds, warmup, clock)
        del runners
        for key in part:
            done[key] = summarize(samples[key])
        save(done)
        if progress:
            progress(total - len(todo) + start + len(part), total)
    return done


def ort_version() -> str:
    try:
        import onnxruntime as ort
    except ImportError:
        raise RunnerUnavailable("onnxruntime is not installed: pip install onnxruntime") from None
    return ort.__version__


class OrtRunner:
    """One onnxruntime session over one model with pre-bound input and output buffers.

    IOBinding keeps the per-call cost to the graph itself: no input or output copies, the
    same cost a block has inside a whole network.
    """

    def __init__(self, model: str | bytes, provider: str = "cpu", threads: int = 1,
                 dtype: str = "fp32", seed: int = 0):
        try:
            import onnxruntime as ort
        except ImportError:
            raise RunnerUnavailable("onnxruntime is not installed: pip install onnxruntime") \
                from None
        name = ORT_PROVIDERS[provider]
        if name not in ort.get_available_providers():
            raise RunnerUnavailable(f"onnxruntime {ort.__version__} has no {name} here; "
                                    f"available: {', '.join(ort.get_available_providers())}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(model, opts, providers=[name])
        inp = self.session.get_inputs()[0]
        self.input_shape = tuple(int(d) for d in inp.shape)
        x = np.random.default_rng(seed).standard_normal(self.input_shape).astype(DTYPES[dtype])
        device = "cpu" if provider == "cpu" else "cuda"
        self.binding = self.session.io_binding()
        self._x = ort.OrtValue.ortvalue_from_numpy(x, device, 0)
        self.binding.bind_ortvalue_input(inp.name, self._x)
        for out in self.session.get_outputs():
            self.binding.bind_output(out.name, device)
        self.session.run_with_iobinding(self.binding)  # allocate outputs once
        outputs = self.binding.get_outputs()
        self.binding.clear_binding_outputs()
        for out, value in zip(self.session.get_outputs(), outputs, strict=True):
            self.binding.bind_ortvalue_output(out.name, value)
        self._outputs = outputs

    def __call__(self) -> None:
        self.session.run_with_iobinding(self.binding)


def _check_cuda(result) -> object:
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {err}")
    return rest[0] if len(rest) == 1 else rest


class TrtRunner:
    """A TensorRT engine built from one ONNX model, run on its own CUDA stream (synchronised)."""

    def __init__(self, model: str | bytes, dtype: str = "fp32", workspace_mb: int = 256):
        try:
            import tensorrt as trt
        except ImportError:
            raise RunnerUnavailable("TensorRT is not installed: pip install tensorrt "
                                    "(or use the JetPack python3-libnvinfer)") from None
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            try:
                from cuda import cudart  # older cuda-python
            except ImportError:
                raise RunnerUnavailable("TensorRT timing needs the CUDA bindings: "
                                        "pip install cuda-python") from None
        self.cudart = cudart
        data = model if isinstance(model, bytes) else open(model, "rb").read()
        logger = trt.Logger(trt.Logger.ERROR)
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(data):
            raise RuntimeError(f"TensorRT cannot parse the model: {parser.get_error(0)}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
        if dtype == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise RuntimeError("TensorRT failed to build an engine")
        self.engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
        self.context = self.engine.create_execution_context()
        self.stream = _check_cuda(cudart.cudaStreamCreate())
        self.buffers = []
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = self.engine.get_tensor_shape(name)
            size = int(np.prod(shape)) * np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))\
                .itemsize
            ptr = _check_cuda(cudart.cudaMalloc(max(size, 1)))
            self.buffers.append(ptr)
            self.context.set_tensor_address(name, int(ptr))

    def __call__(self) -> None:
        self.context.execute_async_v3(self.stream)
        _check_cuda(self.cudart.cudaStreamSynchronize(self.stream))

    def __del__(self) -> None:  # pragma: no cover - needs a GPU
        for ptr in getattr(self, "buffers", []):
            self.cudart.cudaFree(ptr)


def trt_version() -> str:
    try:
        import tensorrt as trt
    except ImportError:
        raise RunnerUnavailable("TensorRT is not installed: pip install tensorrt") from None
    return trt.__version__


def make_runner(runtime: str, model: str | bytes, threads: int = 1,
                dtype: str = "fp32") -> Callable[[], None]:
    """A zero-argument callable running ``model`` once: runtime 'onnxruntime-cpu',
    'onnxruntime-cuda', 'onnxruntime-tensorrt' or 'tensorrt'."""
    if runtime == "tensorrt":
        return TrtRunner(model, dtype)
    provider = runtime.removeprefix("onnxruntime-")
    if provider not in ORT_PROVIDERS:
        raise ValueError(f"unknown runtime {runtime!r}")
    return OrtRunner(model, provider, threads, dtype)


def runtime_version(runtime: str) -> str:
    return trt_version() if runtime == "tensorrt" else ort_version()


def describe_host() -> str:
    """CPU model and core count (and the OS), for the table's ``device`` field."""
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:  # Jetson, Raspberry Pi and other boards name themselves here
        with open("/proc/device-tree/model") as f:
            board = f.read().strip("\x00\n ")
    except OSError:
        board = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Model")):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    prefix = f"{board}: " if board else ""
    return f"{prefix}{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"
