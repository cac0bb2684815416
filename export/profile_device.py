#!/usr/bin/env python3
"""Measure an edgessl bundle on this device: numpy + onnxruntime (or TensorRT), no PyTorch.

    python profile_device.py BUNDLE_DIR --out table.json [--provider cpu|cuda|tensorrt]
        [--threads 1] [--runs N] [--rounds R] [--warmup W] [--clock auto|wall|cpu]

BUNDLE_DIR comes from ``edgessl profile --bundle BUNDLE_DIR ...`` on a machine with edgessl;
it carries its own timing code (``edgessl_runners.py``), so the device measures exactly as the
host would. The table is rewritten atomically after every chunk: rerun the same command after
an interruption and it continues. Take ``table.json`` back and run
``edgessl profile --import table.json``. See export/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys

PROVIDERS = {"cpu": "onnxruntime-cpu", "cuda": "onnxruntime-cuda", "tensorrt": "tensorrt"}
TABLE_FORMAT = "edgessl-latency/1"
BUNDLE_FORMAT = "edgessl-bundle/1"


def fail(message: str, code: int = 2) -> None:
    sys.stderr.write(f"error: {message}\n")
    sys.exit(code)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("bundle", help="bundle folder made by edgessl profile --bundle")
    p.add_argument("--out", required=True, help="table JSON to write (resumed if present)")
    p.add_argument("--provider", choices=sorted(PROVIDERS), default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, help="timed runs per block (default: the bundle's)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default: the bundle's)")
    p.add_argument("--warmup", type=int, help="untimed runs first (default: the bundle's)")
    p.add_argument("--net-runs", type=int, help="timed runs per whole subnet")
    p.add_argument("--clock", choices=["auto", "wall", "cpu"], default="auto")
    p.add_argument("--chunk", type=int, default=64, help="entries between checkpoints")
    return p.parse_args(argv)


def load_bundle(folder: str):
    path = os.path.join(folder, "manifest.json")
    if not os.path.isfile(path):
        fail(f"{folder} is not a bundle: no manifest.json")
    with open(path) as f:
        manifest = json.load(f)
    if manifest.get("format") != BUNDLE_FORMAT:
        fail(f"{path}: format {manifest.get('format')!r} is not {BUNDLE_FORMAT!r}")
    sys.path.insert(0, os.path.abspath(folder))
    try:
        import edgessl_runners
    except ImportError as exc:
        fail(f"{folder}: cannot load edgessl_runners.py ({exc})")
    return manifest, edgessl_runners


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    manifest, rt = load_bundle(args.bundle)
    timing = dict(manifest["timing"])
    for name in ("runs", "rounds", "warmup", "net_runs"):
        if getattr(args, name) is not None:
            timing[name] = getattr(args, name)
    if min(args.threads, timing["runs"], timing["rounds"], args.chunk) < 1:
        fail("--threads, --runs, --rounds and --chunk must be at least 1")
    backend = PROVIDERS[args.provider]
    clock = args.clock
    if clock == "auto":
        clock = "cpu" if args.provider == "cpu" and args.threads == 1 else "wall"
    try:
        version = rt.runtime_version(backend)
    except rt.RunnerUnavailable as exc:
        fail(str(exc))
    meta = {
        "format": TABLE_FORMAT, "space": manifest["space"], "backend": backend,
        "backend_version": ("tensorrt " if backend == "tensorrt" else "onnxruntime ") + version,
        "device": rt.describe_host(), "threads": args.threads, "batch": manifest["batch"],
        "dtype": manifest["dtype"], "clock": clock,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "resolutions": manifest["resolutions"], "choices": manifest["choices"],
        "timing": timing, "complete": False, "measured_with": "export/profile_device.py",
    }
    entries, networks = {}, []
    if os.path.isfile(args.out):
        with open(args.out) as f:
            old = json.load(f)
        for key in ("space", "backend", "threads", "batch", "dtype", "clock", "choices"):
            if old.get(key) != meta[key]:
                fail(f"{args.out} exists with {key}={old.get(key)!r}, not {meta[key]!r}; "
                     "choose another --out")
        entries, networks = old.get("entries", {}), old.get("networks", [])

    def save(_done=None) -> None:
        rt.write_json_atomic(args.out, {**meta, "entries": entries, "networks": networks})

    def make(path: str):
        full = os.path.join(args.bundle, path)
        try:
            return rt.make_runner(backend, full, args.threads, manifest["dtype"])
        except rt.RunnerUnavailable as exc:
            fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - the runtime refuses a model: one line
            fail(f"{backend} cannot run {full}: {' '.join(str(exc).split())}", code=1)

    files = {e["key"]: e["file"] for e in manifest["entries"]}

    def progress(done: int, total: int) -> None:
        sys.stderr.write(f"\rblocks {done}/{total}")
        sys.stderr.flush()

    rt.measure_chunked(list(files), lambda k: make(files[k]), entries, save,
                       runs=timing["runs"], rounds=timing["rounds"], warmup=timing["warmup"],
                       clock=clock, chunk=args.chunk, progress=progress)
    have = {n["file"] for n in networks}
    todo = [n for n in manifest["networks"] if n["file"] not in have]
    for start in range(0, len(todo), args.chunk):
        part = todo[start:start + args.chunk]
        sys.stderr.write(f"\rnetworks {len(networks)}/{len(manifest['networks'])}   ")
        timed = rt.time_interleaved({n["file"]: make(n["file"]) for n in part},
                                    timing["net_runs"], timing["rounds"], timing["warmup"], clock)
        networks += [{"role": n["role"], "arch": n["arch"], "file": n["file"],
                      "measured": rt.summarize(timed[n["file"]])} for n in part]
        save()
    meta["complete"] = True
    save()
    sys.stderr.write(f"\nwrote {args.out}: {len(entries)} entries, {len(networks)} networks\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
