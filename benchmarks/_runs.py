"""Shared by the long benchmarks (ranking, headline): run edgessl commands as a user would,
log them, and resume an interrupted benchmark without redoing finished work.

Every command goes through the CLI (``python -m edgessl ...``) in a subprocess, so what a
benchmark measures is exactly what a user's command line gets; the command line is recorded
next to its result. ``EDGESSL_BENCH_INPROCESS=1`` runs the same commands through the same
entry point (``edgessl.cli.main``) inside this process instead: the smoke presets use it in
the test suite, where a dozen interpreter and torch start-ups would cost more than the work.
A finished training run is recognised by its checkpoint (its step equals
its scheduled total); an unfinished one is continued with ``--resume``.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any


def fail(message: str) -> None:
    """Bad input to a benchmark: one line on stderr, exit code 2, before any work."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def command_line(args: list[Any]) -> str:
    """The shell form of ``edgessl ARGS`` (what a user would type)."""
    return "edgessl " + " ".join(shlex.quote(str(a)) for a in args)


def edgessl(args: list[Any], log: Path, env: dict[str, str] | None = None) -> str:
    """Run ``edgessl ARGS``; stdout back; the command, its time and stderr tail logged.
    A failure stops the benchmark with the command's own error line."""
    t0 = time.time()
    if env is None and os.environ.get("EDGESSL_BENCH_INPROCESS") == "1":
        rc, stdout, stderr = _in_process([str(a) for a in args])
    else:
        cmd = [sys.executable, "-m", "edgessl", *map(str, args)]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        rc, stdout, stderr = p.returncode, p.stdout, p.stderr
    with log.open("a") as f:
        f.write(f"$ {command_line(args)}  ({time.time() - t0:.0f} s, rc {rc})\n"
                f"{stderr[-2000:]}\n")
    if rc != 0:
        tail = stderr.strip().splitlines()[-1:] or ["(no message)"]
        raise SystemExit(f"{command_line(args)} failed (rc {rc}): {tail[0]}")
    return stdout


def _in_process(argv: list[str]) -> tuple[int, str, str]:
    """``edgessl ARGV`` through the console entry point in this process: exit code, stdout,
    stderr (what the subprocess would have printed)."""
    from edgessl.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def last_json(text: str) -> dict:
    """The last JSON object line of a command's ``--json`` output."""
    return json.loads([line for line in text.splitlines() if line.startswith("{")][-1])


def run_state(out: Path) -> str:
    """``done``, ``partial`` or ``new`` for a training run folder."""
    ckpt = out / "last.ckpt"
    if not ckpt.is_file():
        return "new"
    import torch  # here: a benchmark refusing bad options should not wait for torch

    payload = torch.load(ckpt, map_location="cpu", weights_only=True)
    config = json.loads((out / "config.json").read_text()) if (out / "config.json").is_file() \
        else {}
    total = config.get("total_steps")
    step = int(payload.get("step", 0))
    if total is None:  # older runs: compare with the schedule the config implies
        return "partial"
    return "done" if step >= int(total) else "partial"


def logged_hours(log: Path) -> float:
    """Hours spent in the ``edgessl`` commands of ``log`` (the sum of the durations
    :func:`edgessl` records): the cost of a benchmark that ran over several invocations."""
    if not log.is_file():
        return 0.0
    seconds = re.findall(r"^\$ .*  \((\d+) s, rc -?\d+\)$", log.read_text(), re.MULTILINE)
    return sum(map(int, seconds)) / 3600


def train_once(train_args: list[Any], out: Path, log: Path) -> str:
    """Train ``out`` with ``edgessl train TRAIN_ARGS --out OUT`` unless it is done; continue
    it with ``--resume`` when it was interrupted. Returns the command line that made it."""
    args = ["train", *train_args, "--out", out, "--json"]
    state = run_state(out)
    if state == "partial":
        edgessl(["train", "--out", out, "--resume", "--json"], log)
    elif state == "new":
        edgessl(args, log)
    return command_line([a for a in args if a != "--json"])


def evaluate(ckpt: Path, data: str, log: Path, *extra: Any) -> dict:
    """``edgessl eval CKPT --data DATA --json EXTRA`` as a dict."""
    return last_json(edgessl(["eval", ckpt, "--data", data, *extra, "--json"], log))


class ResultCache:
    """A JSON file of finished results keyed by name, rewritten atomically after each one,
    so that a killed benchmark restarts where it stopped."""

    def __init__(self, path: Path):
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def put(self, key: str, value: Any) -> None:
        from edgessl.utils import atomic_write_text

        self.data[key] = value
        atomic_write_text(self.path, json.dumps(self.data, indent=1) + "\n")
