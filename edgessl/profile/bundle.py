"""The device kit's two ends on the host: write a bundle of ONNX files, import a device table.

A bundle folder holds ``manifest.json``, ``blocks/NNNN.onnx`` (one per table entry),
``nets/NNNN.onnx`` (calibration and validation subnets) and ``edgessl_runners.py`` (the torch-free
timing code, :mod:`edgessl.profile.runners`). ``export/profile_device.py`` measures it on the
device with numpy and onnxruntime (or TensorRT) only; ``import_table`` checks what comes back,
fits and validates it here, and installs it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from edgessl.cost.latency import LatencyTable
from edgessl.errors import BadInput
from edgessl.profile import runners
from edgessl.profile.blocks import Choices, build_module, enumerate_specs, export_onnx, input_shape
from edgessl.profile.measure import Settings, plan_networks, shuffled
from edgessl.spaces import get_space
from edgessl.utils import atomic_write_text

BUNDLE_FORMAT = "edgessl-bundle/1"
Progress = Callable[[str, int, int], None]


def write_bundle(s: Settings, folder: str | Path, progress: Progress | None = None) -> dict:
    """Export every entry and planned subnet of ``s`` as ONNX into ``folder``; return the
    manifest. Existing ONNX files of the same name are kept (an interrupted export resumes)."""
    s.check()
    if s.dtype not in runners.DTYPES:
        raise BadInput(f"--dtype {s.dtype!r} not supported")
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
        _export_once(folder / rel, lambda spec=spec, shape=shape: export_onnx(
            build_module(spec), shape, s.dtype))
        entries.append({"key": key, "file": rel, "input_shape": list(shape)})
        if progress:
            progress("export", i + 1, total)
    networks = []
    if nets:
        from edgessl.arch import Arch
        from edgessl.models import build_network

        for i, net in enumerate(nets):
            arch = Arch.from_dict(net["arch"])
            shape = (s.batch, 3, arch.resolution, arch.resolution)
            rel = f"nets/{i:04d}.onnx"
            _export_once(folder / rel, lambda arch=arch, shape=shape: export_onnx(
                build_network(arch), shape, s.dtype))
            networks.append({**net, "file": rel, "input_shape": list(shape)})
            if progress:
                progress("export", len(specs) + i + 1, total)
    shutil.copyfile(runners.__file__, folder / "edgessl_runners.py")
    manifest = {
        "format": BUNDLE_FORMAT, "space": s.space, "batch": s.batch, "dtype": s.dtype,
        "resolutions": list(choices.resolutions), "choices": choices.to_dict(),
        "timing": {"runs": s.runs, "rounds": s.rounds, "warmup": s.warmup,
                   "net_runs": s.net_runs, "seed": s.seed},
        "entries": entries, "networks": networks,
    }
    atomic_write_text(folder / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    return manifest


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
    table.save(dest)
    table.meta["path"] = str(dest)
    return table, dest


__all__ = ["BUNDLE_FORMAT", "write_bundle", "import_table"]
