"""Turn a checkpoint into a backbone to evaluate: a training checkpoint (supernet: pick the
largest, the smallest or an Arch file; standalone) or an ``edgessl-model/1`` network."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from edgessl.arch import Arch
from edgessl.checkpoint import (
    MODEL_FORMAT,
    TRAIN_FORMAT,
    build_model,
    load_checkpoint,
    load_model,
    model_ref_from_dict,
)
from edgessl.errors import BadInput
from edgessl.ops.init import zero_init_residuals


def _load_state(module: nn.Module, state: dict, path: str) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise BadInput(f"checkpoint {path} weights do not fit its model: "
                       f"{str(exc).splitlines()[0][:160]}") from None


def _fresh(ref) -> nn.Module:
    """The network as training initialises it: the untrained reference of an SSL gain."""
    module = build_model(ref)
    zero_init_residuals(module)
    return module


def _pick_arch(space, choice: str, path: str) -> Arch:
    if choice == "largest":
        return space.largest()
    if choice == "smallest":
        return space.smallest()
    arch = Arch.load(choice)
    if arch.space != space.name:
        raise BadInput(f"--arch {choice} is of space {arch.space!r} but checkpoint {path} "
                       f"is a {space.name!r} supernet")
    return arch


def load_backbone(path: str, arch: str = "largest", init_random: bool = False,
                  seed: int = 0) -> tuple[nn.Module, dict[str, Any]]:
    """(backbone returning features, info: name, kind, train resolution). ``init_random``
    gives the same network freshly initialised (the reference for any SSL gain)."""
    from edgessl.spaces import get_space

    payload = load_checkpoint(path)
    fmt = payload["format"]
    torch.manual_seed(seed)
    if fmt == MODEL_FORMAT:
        if arch not in ("largest", "smallest"):
            raise BadInput(f"--arch {arch} applies to supernet checkpoints; {path} holds one "
                           "standalone network")
        module, ref, meta = load_model(path)
        if init_random:
            module = _fresh(ref)
        return module, {"name": str(ref), "kind": "model",
                        "resolution": meta.get("train_resolution") or meta.get("resolution")}
    if fmt != TRAIN_FORMAT:
        raise BadInput(f"checkpoint {path} has format {fmt!r}; expected {MODEL_FORMAT!r} or "
                       f"{TRAIN_FORMAT!r}")
    resolution = payload.get("resolution")
    if payload.get("kind") == "supernet":
        space = get_space(str(payload.get("space")))
        chosen = _pick_arch(space, arch, path)
        supernet = space.supernet()
        if init_random:
            zero_init_residuals(supernet)
        else:
            _load_state(supernet, payload["backbone"], path)
        return supernet.extract(chosen), {"name": str(chosen), "kind": "subnet",
                                          "arch": chosen.to_dict(), "resolution": resolution}
    ref = model_ref_from_dict(payload["model"])
    if arch not in ("largest", "smallest"):
        raise BadInput(f"--arch {arch} applies to supernet checkpoints; {path} trained one "
                       "standalone network")
    if init_random:
        module = _fresh(ref)
    else:
        module = build_model(ref)
        _load_state(module, payload["backbone"], path)
    return module, {"name": str(ref), "kind": "standalone", "resolution": resolution}
