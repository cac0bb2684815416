"""Shared fixtures: a CLI runner that returns (exit code, stdout, stderr)."""

from __future__ import annotations

import io
import sys
from contextlib import redirect_stderr, redirect_stdout

import pytest
import torch

from edgessl.cli import main

# One intra-op thread: tests often run beside other processes (torchrun ranks, subprocesses),
# where OpenMP threads that spin-wait for a busy core make small convolutions 10-40x slower.
torch.set_num_threads(1)


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out[-500:]!r}, err={self.err[-500:]!r})"


@pytest.fixture
def cli(monkeypatch):
    """Run ``edgessl ARGS...`` in-process; ``stdin`` text optional."""

    def run(*args: str, stdin: str = "") -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        with redirect_stdout(out), redirect_stderr(err):
            code = main([str(a) for a in args])
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


def library_eval(ckpt, data: str, protocol: str = "knn", arch: str | None = None,
                 bank: int | None = None, test: int | None = None) -> dict:
    """What ``edgessl eval CKPT --data DATA`` must report, computed through the library
    (load_network + evaluate_backbone at the checkpoint's resolution): a CLI result that
    differs from it was mis-plumbed."""
    from edgessl.checkpoint import load_network
    from edgessl.data import open_dataset
    from edgessl.evaluate import evaluate_backbone
    from edgessl.train import default_resolution

    net = load_network(ckpt, arch)
    res = net.resolution or default_resolution(open_dataset(data, "test").native_size)
    return evaluate_backbone(net.module, data, res, protocol, bank, test, "cpu")
