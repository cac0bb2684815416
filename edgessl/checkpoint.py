"""Checkpoint files: plain tensors and data, written atomically, read with ``weights_only``.

Two formats share one reader:
- ``edgessl-model/1``: a standalone network (an Arch or a baseline) with its weights, what
  ``search`` writes as ``best.ckpt`` and ``eval``/``export``/``bench`` accept.
- ``edgessl-train/1``: a training run (supernet or standalone), written by ``train``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgessl.arch import Arch
from edgessl.errors import BadInput
from edgessl.utils import atomic_write

MODEL_FORMAT = "edgessl-model/1"
TRAIN_FORMAT = "edgessl-train/1"


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """``torch.save`` to a temporary file, then rename: a crash never leaves half a file."""
    if not str(payload.get("format", "")).startswith("edgessl-"):
        raise ValueError("checkpoint payload needs an edgessl format tag")
    return atomic_write(path, lambda p: torch.save(payload, p))


def load_checkpoint(path: str | Path, expect: str | None = None) -> dict[str, Any]:
    """Read a checkpoint without executing pickled code; refuse anything that is not ours.

    ``expect`` restricts the format (``MODEL_FORMAT`` or ``TRAIN_FORMAT``).
    """
    p = Path(path)
    if p.is_dir():
        raise BadInput(f"checkpoint {p} is a folder, not a checkpoint file")
    if not p.is_file():
        raise BadInput(f"checkpoint not found: {p}")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # on garbage the weights-only unpickler raises KeyError, ...
        text = str(exc).splitlines()[0] if str(exc) else ""
        # torch's weights-only refusal is a paragraph about torch.load, not about the file
        useful = (isinstance(exc, (RuntimeError, OSError, ValueError)) and text
                  and not text.startswith("Weights only load failed"))
        reason = text.split(". ")[0][:120] if useful else type(exc).__name__
        raise BadInput(f"checkpoint {p} is truncated or not a checkpoint ({reason})") from None
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if not isinstance(fmt, str) or not fmt.startswith("edgessl-"):
        raise BadInput(f"checkpoint {p} is not an edgessl checkpoint (no edgessl format tag)")
    if expect is not None and fmt != expect:
        raise BadInput(f"checkpoint {p} has format {fmt!r}; expected {expect!r}")
    return payload


def model_ref_to_dict(ref: Arch | str) -> dict[str, Any]:
    if isinstance(ref, Arch):
        return {"kind": "arch", "arch": ref.to_dict()}
    return {"kind": "baseline", "name": ref}


def model_ref_from_dict(data: dict[str, Any]) -> Arch | str:
    if data.get("kind") == "arch":
        return Arch.from_dict(data["arch"])
    if data.get("kind") == "baseline":
        from edgessl.baselines import get_baseline

        return get_baseline(data["name"]).name
    raise BadInput(f"checkpoint model entry {data!r} is neither an arch nor a baseline")


def build_model(ref: Arch | str, num_classes: int = 0) -> nn.Module:
    """A fresh backbone for an Arch or a baseline name."""
    if isinstance(ref, Arch):
        from edgessl.models import build_network

        return build_network(ref, num_classes)
    from edgessl.baselines import build_baseline

    return build_baseline(ref, num_classes)


def save_model(path: str | Path, ref: Arch | str, model: nn.Module,
               meta: dict[str, Any] | None = None) -> Path:
    """Save a standalone backbone (``edgessl-model/1``)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return save_checkpoint(path, {"format": MODEL_FORMAT, "model": model_ref_to_dict(ref),
                                  "state_dict": state, "meta": meta or {}})


def load_model(path: str | Path) -> tuple[nn.Module, Arch | str, dict[str, Any]]:
    """Rebuild a standalone backbone from ``edgessl-model/1``: (module in eval mode, ref, meta)."""
    payload = load_checkpoint(path, expect=MODEL_FORMAT)
    ref = model_ref_from_dict(payload["model"])
    model = build_model(ref)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise BadInput(f"checkpoint {path} weights do not fit its model: "
                       f"{str(exc).splitlines()[0]}") from None
    return model.eval(), ref, payload.get("meta", {})
