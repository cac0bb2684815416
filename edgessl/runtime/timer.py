"""The one timer: warm-up, interleaved rounds with a rotating order, clocks, statistics.

Every timed model ("runner": a zero-argument callable that runs it once and returns when the
result is ready) gets ``runs`` timed calls split over ``rounds`` passes over all runners. Pass
``r`` visits the runners in a rotating order (starting at runner ``r mod n``), so a burst of noise
on a shared machine, or a position effect (the model timed right after a big one runs on colder
caches), spreads over all of them instead of spoiling one. Each visit starts with untimed calls:
``warmup`` on the first visit, ``max(1, warmup // 4)`` on later ones (the other runners have
evicted this one's weights from the caches since its last visit; without them the first timed
call of a visit is a cold one).

Clocks: ``wall`` (``time.perf_counter``) or ``cpu`` (``time.thread_time``: CPU time of the
calling thread, immune to time the OS gives other processes; for one-thread CPU backends, which
compute on the calling thread, it equals wall time on an idle machine).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

import numpy as np

CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.thread_time}
ENTRY_KEYS = ("median_ms", "p10_ms", "p90_ms", "count")  # what a latency-table entry keeps
Runner = Callable[[], object]


def summarize(samples_ms: Iterable[float]) -> dict[str, float | int]:
    """Statistics of timed calls (ms): median, p10, p90, p99, mean, min, std, ``spread``
    (``(p90 - p10) / median``: the relative width of the central 80%) and count."""
    a = np.asarray(list(samples_ms), dtype=np.float64)
    p10, med, p90, p99 = np.percentile(a, [10, 50, 90, 99])
    stats = {"median_ms": med, "p10_ms": p10, "p90_ms": p90, "p99_ms": p99,
             "mean_ms": a.mean(), "min_ms": a.min(), "std_ms": a.std(),
             "spread": (p90 - p10) / med if med > 0 else 0.0}
    return {**{k: round(float(v), 6) for k, v in stats.items()}, "count": int(a.size)}


def entry(samples_ms: Iterable[float]) -> dict[str, float | int]:
    """The statistics a latency-table entry or measured network keeps (:data:`ENTRY_KEYS`)."""
    stats = summarize(samples_ms)
    return {k: stats[k] for k in ENTRY_KEYS}


def rewarm_calls(warmup: int) -> int:
    """Untimed calls at the start of every visit after the first (see the module doc)."""
    return min(warmup, max(1, warmup // 4))


def time_interleaved(runners: Mapping[str, Runner], runs: int, rounds: int, warmup: int,
                     clock: str = "wall",
                     on_round: Callable[[int], None] | None = None) -> dict[str, list[float]]:
    """Timed calls (ms) of every runner: ``rounds`` passes with a rotating order, each visit
    ``ceil(runs / rounds)`` timed calls (``runs`` in all) after its warm-up calls."""
    if runs < 1 or rounds < 1 or warmup < 0:
        raise ValueError(f"runs {runs} and rounds {rounds} must be >= 1, warmup {warmup} >= 0")
    now = CLOCKS[clock]
    keys = list(runners)
    rounds = min(rounds, runs)
    per_visit = -(-runs // rounds)
    samples: dict[str, list[float]] = {k: [] for k in keys}
    for r in range(rounds):
        for k in range(len(keys)):
            key = keys[(r + k) % len(keys)]
            fn, out = runners[key], samples[key]
            for _ in range(warmup if r == 0 else rewarm_calls(warmup)):
                fn()
            for _ in range(min(per_visit, runs - len(out))):
                t0 = now()
                fn()
                out.append((now() - t0) * 1e3)
        if on_round:
            on_round(r)
    return samples


def measure_chunked(keys: list[str], make: Callable[[str], Runner], done: dict[str, dict],
                    save: Callable[[dict[str, dict]], None], *, runs: int, rounds: int,
                    warmup: int, clock: str, chunk: int = 64,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, dict]:
    """Measure every key not yet in ``done``, ``chunk`` at a time (interleaved within a chunk),
    storing :func:`entry` statistics and calling ``save(done)`` after each chunk, so an
    interrupted run resumes where it stopped."""
    todo = [k for k in keys if k not in done]
    total = len(keys)
    if progress:
        progress(total - len(todo), total)
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        runners = {key: make(key) for key in part}
        samples = time_interleaved(runners, runs, rounds, warmup, clock)
        for runner in runners.values():
            getattr(runner, "close", lambda: None)()  # free device memory and streams now
        del runners
        for key in part:
            done[key] = entry(samples[key])
        save(done)
        if progress:
            progress(total - len(todo) + start + len(part), total)
    return done


__all__ = ["CLOCKS", "ENTRY_KEYS", "summarize", "entry", "rewarm_calls", "time_interleaved",
           "measure_chunked"]
