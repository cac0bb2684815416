"""The device kit's two ends on the host: write a bundle of ONNX files, import a device table.

A bundle folder holds ``manifest.json``, ``blocks/NNNN.onnx`` (one per table entry),
``nets/NNNN.onnx`` (calibration and validation subnets, written as ``edgessl export`` writes
them) and ``edgessl_runtime/`` (a copy of the torch-free runtime, :mod:`edgessl.runtime`:
the very timer, sessions and backends that measure on the host). INT8 bundles hold QDQ files
quantized here in the scheme of ``--backend`` (onnxruntime CPU: u8s8; TensorRT: s8s8),
recorded as the manifest's ``quantization``. ``export/profile_device.py``
measures it on the device with numpy and onnxruntime (or TensorRT) only; ``import_table`` checks
what comes back, fits and validates it here, and installs it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import edgessl.runtime
from edgessl.cost.latency import LatencyTable
from edgessl.deploy.bench import model_bytes
from edgessl.deploy.int8 import scheme_for
from edgessl.errors import BadInput
from edgessl.profile.blocks import Choices, build_module, enumerate_specs, input_shape
from edgessl.profile.measure import (
    Settings,
    export_subnet,
    plan_networks,
    quantization,
    shuffled,
)
from edgessl.spaces import get_space
from edgessl.utils import atomic_write_text

BUNDLE_FORMAT = "edgessl-bundle/1"
RUNTIME_DIR = "edgessl_runtime"  # the runtime package's copy, imported by the kit
Progress = Callable[[str, int, int], None]


def write_bundle(s: Settings, folder: str | Path, progress: Progress | None = None) -> dict:
    """Export every entry and planned subnet of ``s`` as ONNX into ``folder``; return the
    manifest. Existing ONNX files of the same name are kept (an interrupted export resumes)."""
    s.check()
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"--bundle {folder} exists and is not a folder")
    choices: Choices = s.choices()
    specs = enumerate_specs(get_space(s.space), choices)
    nets = plan_networks(s, choices)
    (folder / "blocks").mkdir(parents=True, exist_ok=True)
    (folder / "nets").mkdir(parents=True, exist_ok=True)
    entries = []
    total = len(specs) + len(nets)
    for i, key in enumerate(shuffled(list(specs), s.seed)):
        spec = specs[key]
        shape = input_shape(spec, s.batch)
        rel = f"blocks/{i:04d}.onnx"
        _export_once(folder / rel, lambda spec=spec, shape=shape: model_bytes(
            build_module(spec), shape, s.dtype, s.backend))
        entries.append({"key": key, "file": rel, "input_shape": list(shape)})
        if progress:
            progress("export", i + 1, total)
    networks = []
    if nets:
        from edgessl.arch import Arch

        for i, net in enumerate(nets):
            arch = Arch.from_dict(net["arch"])
            rel = f"nets/{i:04d}.onnx"
            if not (folder / rel).is_file():
                export_subnet(arch, folder / "nets", f"{i:04d}", s.batch, s.dtype,
                              scheme_for(s.backend))
            shape = (s.batch, 3, arch.resolution, arch.resolution)
            networks.append({**net, "file": rel, "input_shape": list(shape)})
            if progress:
                progress("export", len(specs) + i + 1, total)
    copy_runtime(folder / RUNTIME_DIR)
    manifest = {
        "format": BUNDLE_FORMAT, "space": s.space, "batch": s.batch, "dtype": s.dtype,
        "resolutions": list(choices.resolutions), "choices": choices.to_dict(),
        "timing": {"runs": s.runs, "rounds": s.rounds, "warmup": s.warmup,
                   "net_runs": s.net_runs, "seed": s.seed},
        **({"quantization": quantization(s.backend)} if s.dtype == "int8" else {}),
        "entries": entries, "networks": networks,
    }
    atomic_write_text(folder / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    return manifest


def copy_runtime(dest: Path) -> Path:
    """Copy the runtime package's modules (:mod:`edgessl.runtime`, torch-free, relative
    imports only) to ``dest``: the kit imports them as ``edgessl_runtime``."""
    dest.mkdir(parents=True, exist_ok=True)
    for src in sorted(Path(edgessl.runtime.__file__).parent.glob("*.py")):
        shutil.copyfile(src, dest / src.name)
    return dest


def _export_once(path: Path, make: Callable[[], bytes]) -> None:
    if path.is_file() and path.stat().st_size > 0:
        return
    data = make()
    from edgessl.utils import atomic_write

    atomic_write(path, lambda p: p.write_bytes(data))


def import_table(src: str | Path, dest_dir: str | Path = "latency_tables",
                 name: str | None = None) -> tuple[LatencyTable, Path]:
    """Check a device-measured table (format, space, every entry of its sub-space present,
    finished), fit its overhead and score its validation subnets, and save it under
    ``dest_dir``; returns the table and where it went."""
    dest_dir = Path(dest_dir)
    _check_writable(dest_dir)
    table = LatencyTable.load(src)
    if not table.complete:
        raise BadInput(f"{src} is unfinished ({len(table.entries)} entries): let "
                       "profile_device.py finish (rerun it with the same --out to resume)")
    space = get_space(table.space)
    ch = table.meta.get("choices") or {}
    try:
        choices = Choices.of(space, table.meta["resolutions"], ch.get("width_mults"),
                             ch.get("kernels"), ch.get("expands"))
    except BadInput as exc:
        raise BadInput(f"{src}: {exc}") from None
    missing = [k for k in enumerate_specs(space, choices) if k not in table.entries]
    if missing:
        raise BadInput(f"{src} lacks entry {missing[0]!r} ({len(missing)} missing)")
    for net in table.networks:
        if net.get("role") not in ("calibrate", "validate") or "measured" not in net:
            raise BadInput(f"{src}: network entries need a role and a measurement")
    if table.networks:
        from edgessl.profile.validate import finalize

        finalize(table)
    dest = Path(dest_dir) / (name or Path(src).name)
    if not dest.name.endswith(".json"):
        dest = dest.with_name(dest.name + ".json")
    table.meta.pop("path", None)
    try:
        table.save(dest)
    except OSError as exc:
        raise BadInput(f"cannot install the table in {dest_dir}: {exc.strerror or exc}") from None
    table.meta["path"] = str(dest)
    return table, dest


def _check_writable(folder: Path) -> None:
    """BadInput before any work when ``folder`` (or, if missing, the folder that would hold it)
    cannot be written."""
    import os

    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise BadInput(f"cannot install the table in {folder}: {probe} is not a writable "
                       "folder")


__all__ = ["BUNDLE_FORMAT", "RUNTIME_DIR", "write_bundle", "copy_runtime", "import_table"]
