#!/usr/bin/env python3
"""Measure an edgessl bundle on this device: numpy + onnxruntime (or TensorRT), no PyTorch.

    python profile_device.py BUNDLE_DIR --out table.json [--provider cpu|cuda|tensorrt]
        [--threads 1] [--runs N] [--rounds R] [--warmup W] [--clock auto|wall|cpu]

BUNDLE_DIR comes from ``edgessl profile --bundle BUNDLE_DIR ...`` on a machine with edgessl
(fp32, fp16 or INT8: an INT8 bundle holds QDQ files quantized there, for the scheme of the
``--backend`` it was made for; TensorRT takes symmetric bundles only, ``--backend tensorrt``);
it carries the torch-free runtime (``edgessl_runtime/``, a copy of ``edgessl.runtime``: the
backends, sessions and timer that ``edgessl profile`` and ``edgessl bench`` use), so the device
measures exactly as the host would; where edgessl itself is installed, its runtime is used. The
table is rewritten atomically after every chunk: rerun the same command after an interruption
and it continues. Take ``table.json`` back and run ``edgessl profile --import table.json``. See
export/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from typing import Any

TABLE_FORMAT = "edgessl-latency/1"
BUNDLE_FORMAT = "edgessl-bundle/1"
RUNTIME_DIR = "edgessl_runtime"
MATCH = ("space", "backend", "threads", "batch", "dtype", "clock", "choices", "quantization")
# manifest fields and their JSON types: a bundle missing one is refused before any work
MANIFEST = {"format": str, "space": str, "batch": int, "dtype": str, "resolutions": list,
            "choices": dict, "timing": dict, "entries": list, "networks": list}
TIMING = ("runs", "rounds", "warmup", "net_runs")


def fail(message: str, code: int = 2) -> None:
    """One line on stderr and exit ``code`` (2: bad input, 1: a runtime failure)."""
    sys.stderr.write("error: " + " ".join(str(message).split()) + "\n")
    sys.exit(code)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("bundle", help="bundle folder made by edgessl profile --bundle")
    p.add_argument("--out", required=True, help="table JSON to write (resumed if present)")
    p.add_argument("--provider", choices=["cpu", "cuda", "tensorrt"], default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, help="timed runs per block (default: the bundle's)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default: the bundle's)")
    p.add_argument("--warmup", type=int, help="untimed runs first (default: the bundle's)")
    p.add_argument("--net-runs", type=int, help="timed runs per whole subnet")
    p.add_argument("--clock", choices=["auto", "wall", "cpu"], default="auto")
    p.add_argument("--chunk", type=int, default=64, help="entries between checkpoints")
    return p.parse_args(argv)


def load_runtime(bundle: str):
    """The runtime package: edgessl's own where edgessl is installed, else the bundle's copy
    (``BUNDLE/edgessl_runtime``, which needs only numpy and onnxruntime or TensorRT)."""
    try:
        import edgessl.runtime as rt
        import edgessl.runtime.backends  # noqa: F401 - the submodules the kit uses
        import edgessl.runtime.jsonfile  # noqa: F401
        import edgessl.runtime.timer  # noqa: F401
    except ImportError:
        if not os.path.isfile(os.path.join(bundle, RUNTIME_DIR, "timer.py")):
            fail(f"{bundle}: no {RUNTIME_DIR}/ (make the bundle again with edgessl profile "
                 "--bundle)")
        sys.path.insert(0, os.path.abspath(bundle))
        try:
            import edgessl_runtime as rt
            import edgessl_runtime.backends  # noqa: F401
            import edgessl_runtime.jsonfile  # noqa: F401
            import edgessl_runtime.timer  # noqa: F401
        except ImportError as exc:
            fail(f"{bundle}: cannot load {RUNTIME_DIR} ({exc})")
    return rt


def check_manifest(manifest: Any, path: str) -> dict:
    """The manifest if it has every field with the right JSON type (else exit 2 naming it)."""
    if not isinstance(manifest, dict):
        fail(f"{path}: expected a JSON object")
    if manifest.get("format") != BUNDLE_FORMAT:
        fail(f"{path}: format {manifest.get('format')!r} is not {BUNDLE_FORMAT!r}")
    for key, kind in MANIFEST.items():
        if not isinstance(manifest.get(key), kind) or isinstance(manifest.get(key), bool):
            fail(f"{path}: field {key!r} is missing or not a JSON {kind.__name__}")
    for key in TIMING:
        if not isinstance(manifest["timing"].get(key), int):
            fail(f"{path}: timing.{key} is missing or not an integer")
    for i, e in enumerate(manifest["entries"]):
        if not (isinstance(e, dict) and isinstance(e.get("key"), str)
                and isinstance(e.get("file"), str)):
            fail(f"{path}: entries[{i}] needs a 'key' and a 'file'")
    for i, n in enumerate(manifest["networks"]):
        if not (isinstance(n, dict) and isinstance(n.get("file"), str)
                and n.get("role") in ("calibrate", "validate") and isinstance(n.get("arch"),
                                                                              dict)):
            fail(f"{path}: networks[{i}] needs a 'role' (calibrate or validate), an 'arch' and "
                 "a 'file'")
    return manifest


def load_bundle(folder: str):
    """(manifest, runtime) of a bundle folder; exit 2 on anything that is not one."""
    path = os.path.join(folder, "manifest.json")
    if not os.path.isfile(path):
        fail(f"{folder} is not a bundle: no manifest.json")
    rt = load_runtime(folder)
    try:
        manifest = rt.jsonfile.read_json(path, "bundle manifest")
    except ValueError as exc:
        fail(str(exc))
    manifest = check_manifest(manifest, path)
    for item in (*manifest["entries"], *manifest["networks"]):
        if not os.path.isfile(os.path.join(folder, item["file"])):
            fail(f"{folder}: {item['file']} is missing (copy the whole bundle)")
    return manifest, rt


def table_meta(args: argparse.Namespace, manifest: dict, timing: dict, rt) -> tuple[dict, Any]:
    """The table's metadata (what ``edgessl profile --import`` checks) and the backend."""
    backend = rt.backends.get_backend(rt.backends.KIT_PROVIDERS[args.provider])
    quant = manifest.get("quantization")
    if manifest["dtype"] == "int8":
        scheme = (quant or {}).get("scheme", {}) if isinstance(quant, dict) else {}
        if args.provider == "tensorrt" and scheme.get("activations") != "int8":
            fail(f"{args.bundle} is quantized with {scheme.get('name', '?')} (uint8 "
                 f"activations, for onnxruntime CPU); --provider {args.provider} needs "
                 "symmetric INT8: make the bundle with edgessl profile --bundle ... --dtype int8 "
                 f"--backend {backend.name}")
    try:
        backend.check()
        version = backend.version()
    except rt.Unavailable as exc:
        fail(str(exc))
    clock = backend.default_clock(args.threads) if args.clock == "auto" else args.clock
    return {
        "format": TABLE_FORMAT, "space": manifest["space"], "backend": backend.name,
        "backend_version": version, "device": backend.describe_device(),
        "threads": args.threads, "batch": manifest["batch"], "dtype": manifest["dtype"],
        "clock": clock, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "resolutions": manifest["resolutions"], "choices": manifest["choices"],
        "timing": timing, **({"quantization": quant} if quant is not None else {}),
        "complete": False, "measured_with": "export/profile_device.py",
    }, backend


def resume(out: str, meta: dict, rt) -> tuple[dict, list]:
    """Entries and networks already in ``out`` when its settings match (else exit 2)."""
    if not os.path.isfile(out):
        return {}, []
    try:
        old = rt.jsonfile.read_json(out, "table")
    except ValueError as exc:
        fail(f"{exc}; choose another --out")
    if not isinstance(old, dict) or not isinstance(old.get("entries", {}), dict) \
            or not isinstance(old.get("networks", []), list):
        fail(f"{out} is not a latency table (entries/networks malformed); choose another --out")
    for key in MATCH:
        if old.get(key) != meta.get(key):
            fail(f"{out} exists with {key}={old.get(key)!r}, not {meta.get(key)!r}; "
                 "choose another --out")
    return old.get("entries", {}), old.get("networks", [])


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    manifest, rt = load_bundle(args.bundle)
    timing = dict(manifest["timing"])
    for name in TIMING:
        if getattr(args, name) is not None:
            timing[name] = getattr(args, name)
    if min(args.threads, timing["runs"], timing["rounds"], timing["net_runs"], args.chunk) < 1 \
            or timing["warmup"] < 0:
        fail("--threads, --runs, --rounds, --net-runs and --chunk must be at least 1, "
             "--warmup at least 0")
    meta, backend = table_meta(args, manifest, timing, rt)
    entries, networks = resume(args.out, meta, rt)

    def save(_done=None) -> None:
        rt.jsonfile.write_json_atomic(args.out, {**meta, "entries": entries,
                                                 "networks": networks})

    def make(path: str):
        full = os.path.join(args.bundle, path)
        try:
            return backend.session(full, kind="onnx", threads=args.threads,
                                   batch=manifest["batch"])
        except rt.Unavailable as exc:
            fail(str(exc))
        except rt.SessionError as exc:
            fail(f"{backend.name} cannot run {full}: {exc}", code=1)

    files = {e["key"]: e["file"] for e in manifest["entries"]}

    def progress(done: int, total: int) -> None:
        sys.stderr.write(f"\rblocks {done}/{total}")
        sys.stderr.flush()

    rt.timer.measure_chunked(list(files), lambda k: make(files[k]), entries, save,
                             runs=timing["runs"], rounds=timing["rounds"],
                             warmup=timing["warmup"], clock=meta["clock"], chunk=args.chunk,
                             progress=progress)
    have = {n["file"] for n in networks}
    todo = [n for n in manifest["networks"] if n["file"] not in have]
    for start in range(0, len(todo), args.chunk):
        part = todo[start:start + args.chunk]
        sys.stderr.write(f"\rnetworks {len(networks)}/{len(manifest['networks'])}   ")
        sessions = {n["file"]: make(n["file"]) for n in part}
        timed = rt.timer.time_interleaved(sessions, timing["net_runs"], timing["rounds"],
                                          timing["warmup"], meta["clock"])
        for session in sessions.values():
            session.close()
        networks += [{"role": n["role"], "arch": n["arch"], "file": n["file"],
                      "measured": rt.timer.entry(timed[n["file"]])} for n in part]
        save()
    meta["complete"] = True
    save()
    sys.stderr.write(f"\nwrote {args.out}: {len(entries)} entries, {len(networks)} networks\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
