"""Shared helpers for the training tests: a tiny trained run (session-wide) and a subprocess
runner for the ``edgessl`` CLI. Imported by test_train*.py and test_eval.py."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from edgessl.cli import main

# A few images, tiny resolution, one thread: every training test stays in seconds.
TINY = ("--data", "digits", "--subset", "32", "--batch-size", "16", "--resolution", "16",
        "--num-sampled", "1", "--workers", "0", "--device", "cpu")


def run_inprocess(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):  # one thread: set in conftest.py
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def subprocess_env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def edgessl_cmd(*args) -> list[str]:
    return [sys.executable, "-c", "from edgessl.cli import main; main()", *map(str, args)]


def run_subprocess(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(edgessl_cmd(*args), capture_output=True, text=True, cwd=cwd,
                          env=subprocess_env(), timeout=timeout)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A supernet trained for 2 SimCLR steps on digits (shared by eval tests)."""
    out = tmp_path_factory.mktemp("run") / "RUN"
    code, _, err = run_inprocess("train", *TINY, "--ssl", "simclr", "--max-steps", "2",
                                 "--out", out)
    assert code == 0, err
    return out
