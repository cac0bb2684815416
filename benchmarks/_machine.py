"""Machine description and BENCHMARKS.md section writer shared by the benchmark scripts."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        text = Path("/proc/cpuinfo").read_text()
        m = re.search(r"model name\s*:\s*(.+)", text)
        cpu = m.group(1).strip() if m else cpu
    except OSError:
        pass
    import torch

    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"torch {torch.__version__}")


def repo_relative(path: str | Path | None) -> str | None:
    """``path`` relative to the repository when it lies inside it (figures read the same on
    every checkout); other paths as given."""
    if path is None or not Path(path).resolve().is_relative_to(ROOT):
        return None if path is None else str(path)
    return str(Path(path).resolve().relative_to(ROOT))


def today() -> str:
    return _dt.date.today().isoformat()


def write_section(name: str, body: str) -> None:
    """Replace the text between ``<!-- section:NAME -->`` and the next marker (or EOF)."""
    text = BENCHMARKS.read_text()
    marker = f"<!-- section:{name} -->"
    start = text.index(marker) + len(marker)
    nxt = text.find("<!-- section:", start)
    end = len(text) if nxt == -1 else nxt
    from edgessl.utils import atomic_write_text

    atomic_write_text(BENCHMARKS, text[:start] + "\n" + body.strip() + "\n\n" + text[end:])


def publish(name: str, lines: list[str], write: bool) -> None:
    """Print a benchmark's section and, when ``write``, put it into BENCHMARKS.md."""
    text = "\n".join(lines)
    print(text)
    if write:
        write_section(name, text)
