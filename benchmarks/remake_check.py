"""Does the README's remake command reproduce the shipped supernet? Compare a re-run with it.

Slims the re-run's checkpoint exactly as the README's last step does (float16 backbone) and
compares it with the shipped asset (or ``--reference``) tensor by tensor: how many are
bit-identical, the largest absolute difference, and the recorded step and resolution. Training
on one CPU thread with the same seed and ``--workers 0`` is deterministic, so a faithful remake
is bit-identical; anything else says where it drifted.

    python benchmarks/remake_check.py runs/remake/supernet-40/last.ckpt --write
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import machine, repo_relative, today  # noqa: E402
from _runs import fail  # noqa: E402

from edgessl.checkpoint import TRAIN_FORMAT, load_checkpoint  # noqa: E402
from edgessl.errors import EdgesslError  # noqa: E402
from edgessl.search.assets import slim_supernet  # noqa: E402
from edgessl.search.run import default_supernet  # noqa: E402
from edgessl.utils import atomic_write_text  # noqa: E402


def compare(remade: dict, reference: dict) -> dict:
    """Tensor-by-tensor agreement of two slim supernet checkpoints."""
    a, b = remade["backbone"], reference["backbone"]
    shared = sorted(set(a) & set(b))
    diffs = {k: float((a[k].float() - b[k].float()).abs().max()) if a[k].shape == b[k].shape
             else float("inf") for k in shared}
    return {"tensors": len(shared), "only_in_remake": sorted(set(a) - set(b)),
            "only_in_reference": sorted(set(b) - set(a)),
            "identical": sum(torch.equal(a[k], b[k]) for k in shared),
            "max_abs_diff": max(diffs.values(), default=0.0),
            "step": [remade.get("step"), reference.get("step")],
            "resolution": [remade.get("resolution"), reference.get("resolution")]}


def cpu_capability(ckpt: Path) -> str | None:
    """The vector instruction set a run trained with, from the ``config.json`` that
    ``edgessl train`` writes beside its checkpoint (None: not recorded)."""
    try:
        return json.loads((ckpt.parent / "config.json").read_text()).get("cpu_capability")
    except (OSError, ValueError, AttributeError):
        return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="the re-run's training checkpoint (RUN/last.ckpt)")
    p.add_argument("--reference", default=None, help="default: the shipped supernet")
    p.add_argument("--write", action="store_true", help="benchmarks/results/remake_check.json")
    args = p.parse_args()
    ref_path = Path(args.reference) if args.reference else default_supernet()
    try:
        with tempfile.TemporaryDirectory() as tmp:  # both slim (a slim one slims to itself)
            remade, reference = (
                load_checkpoint(slim_supernet(src, Path(tmp) / f"{i}.ckpt"),
                                expect=TRAIN_FORMAT, kind="supernet")
                for i, src in enumerate((args.run, ref_path)))
    except EdgesslError as exc:
        fail(" ".join(str(exc).split()))
    result = {"command": " ".join(sys.argv), "date": today(), "machine": machine(),
              "run": repo_relative(args.run), "reference": repo_relative(ref_path),
              **compare(remade, reference)}
    same = (result["identical"] == result["tensors"] and not result["only_in_remake"]
            and not result["only_in_reference"])
    result["bit_identical"] = same
    print(f"{result['identical']}/{result['tensors']} backbone tensors bit-identical, max "
          f"|diff| {result['max_abs_diff']:.3g}; step {result['step'][0]} vs "
          f"{result['step'][1]}: {'REPRODUCED' if same else 'DIFFERENT'}")
    if not same:
        caps = {name: cpu_capability(Path(path)) for name, path in (("run", args.run),
                                                                      ("reference", ref_path))}
        known = ", ".join(f"{k} on {v}" for k, v in caps.items() if v)
        print("PyTorch's CPU kernels round differently per vector instruction set (AVX2, "
              "AVX512, ...): bit-identical re-runs need the same one"
              + (f" (trained: {known})" if known else "") + "; compare quality instead "
              "(edgessl eval).")
    if args.write:
        atomic_write_text(ROOT / "benchmarks" / "results" / "remake_check.json",
                          json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
