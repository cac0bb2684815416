"""What machine this is: the ``device`` of a latency table and the ``machine`` of a bench report."""

from __future__ import annotations

import functools
import os
import platform


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (``model name``, or ``Model`` on Arm boards)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


@functools.cache
def cpu_flags() -> frozenset[str] | None:
    """This CPU's feature flags (``flags``, or ``Features`` on Arm, in /proc/cpuinfo); None
    where they cannot be read (not Linux). Read once: an INT8 table quantizes hundreds of
    blocks, each asking."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def board_name() -> str:
    """The board (Jetson, Raspberry Pi, ...) as the device tree names it, else ""."""
    try:
        with open("/proc/device-tree/model") as f:
            return f.read().strip("\x00\n ")
    except OSError:
        return ""


def describe_host() -> str:
    """Board, CPU model, core count and OS in one line (a latency table's ``device``)."""
    board = board_name()
    prefix = f"{board}: " if board else ""
    return (f"{prefix}{cpu_name()}, {os.cpu_count()} cores, {platform.system()} "
            f"{platform.release()}")


def machine() -> dict[str, object]:
    """CPU model and core count (what a bench report and BENCHMARKS.md record)."""
    return {"cpu": cpu_name(), "nproc": os.cpu_count()}


__all__ = ["cpu_name", "cpu_flags", "board_name", "describe_host", "machine"]
