"""The one timing runtime: backends, inference sessions, the timer, the host description.

``edgessl profile``, ``edgessl bench`` and the device kit (``export/profile_device.py``) all time
models through this package, so a latency table's prediction and a ``bench`` figure of the
deployed file are comparable by construction:

- :mod:`.timer`: clocks (wall or thread-CPU), warm-up, interleaved rounds with a rotating
  order, statistics (median, p10, p90, p99, spread);
- :mod:`.sessions`: onnxruntime and PyTorch sessions (one rule for inputs and outputs: they stay
  where the backend computes, bound once; the input is seeded random data);
- :mod:`.trt`: TensorRT engines (build, load, run on a private CUDA stream), the only module
  that calls the TensorRT API;
- :mod:`.backends`: the one registry from backend name to how it runs a model;
- :mod:`.host`: what machine this is; :mod:`.jsonfile`: atomic JSON files for the kit.

Nothing here imports edgessl or, at import time, torch, onnxruntime or TensorRT: the device kit
runs this package (copied into its bundle as ``edgessl_runtime``) on devices that have only numpy
and onnxruntime. Hence relative imports only, and errors of its own, which edgessl maps onto
exit codes: :class:`Unavailable` (a backend cannot run here: bad input, exit 2) and
:class:`SessionError` (a runtime refused or failed to run a model: exit 1).
"""


class Unavailable(RuntimeError):
    """A backend, provider or library (onnxruntime provider, TensorRT, CUDA) is missing here."""


class SessionError(RuntimeError):
    """A runtime could not load, build or run a model (the message is one line)."""


def one_line(exc: BaseException | str, limit: int = 400) -> str:
    """An exception's text folded onto one line (runtimes raise multi-line messages)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:limit]
