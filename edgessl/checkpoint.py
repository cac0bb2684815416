"""Checkpoint files: plain tensors and data, written atomically, read with ``weights_only`` and
checked against a schema before anything is built from them.

Two formats:
- ``edgessl-model/1``: a standalone network (an Arch or a baseline) with its weights, what
  ``search`` writes as ``best.ckpt`` and ``eval``/``export``/``bench`` accept.
- ``edgessl-train/1``: a training run (supernet or standalone), written by ``train``; a run
  to resume also holds the optimiser, schedule, SSL head and RNG states.

One way in: :func:`load_checkpoint` (the file, its format tag, its required keys and their
types; a missing or mistyped key is one :class:`BadInput` line naming it) and
:func:`load_network`, which turns any of them into a module for ``eval``, ``search``,
``export`` and ``bench``. :func:`load_weights` is the one "weights do not fit" check, also
used by the resume path (:mod:`edgessl.train.state`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgessl.arch import Arch
from edgessl.errors import BadInput
from edgessl.models import build_model
from edgessl.utils import atomic_write

MODEL_FORMAT = "edgessl-model/1"
TRAIN_FORMAT = "edgessl-train/1"
FORMATS = (MODEL_FORMAT, TRAIN_FORMAT)
TRAIN_KINDS = ("supernet", "standalone")

# required keys and their types, per format (and, for training runs, per kind)
REQUIRED: dict[str, dict[str, type | tuple[type, ...]]] = {
    MODEL_FORMAT: {"model": dict, "state_dict": dict},
    "supernet": {"space": str, "backbone": dict},
    "standalone": {"model": dict, "backbone": dict},
    "resume": {"config": dict, "step": int, "objective": dict, "optimizer": dict,
               "scheduler": dict, "rng": dict},
}
# keys that may be absent, but have these types when present
OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "meta": dict, "config": dict, "step": int, "resolution": (int, type(None))}
STATE_DICTS = ("state_dict", "backbone", "objective")


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """``torch.save`` to a temporary file, fsync, rename: a crash never leaves half a file."""
    if not str(payload.get("format", "")).startswith("edgessl-"):
        raise ValueError("checkpoint payload needs an edgessl format tag")
    return atomic_write(path, lambda p: torch.save(payload, p))


def _read(p: Path) -> Any:
    if p.is_dir():
        raise BadInput(f"checkpoint {p} is a folder, not a checkpoint file")
    if not p.is_file():
        raise BadInput(f"checkpoint not found: {p}")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # on garbage the weights-only unpickler raises KeyError, ...
        text = str(exc).splitlines()[0] if str(exc) else ""
        # torch's weights-only refusal is a paragraph about torch.load, not about the file
        useful = (isinstance(exc, (RuntimeError, OSError, ValueError)) and text
                  and not text.startswith("Weights only load failed"))
        reason = text.split(". ")[0][:120] if useful else type(exc).__name__
        raise BadInput(f"checkpoint {p} is truncated or not a checkpoint ({reason})") from None


def _type_name(t: type | tuple[type, ...]) -> str:
    types = t if isinstance(t, tuple) else (t,)
    return " or ".join("null" if x is type(None) else x.__name__ for x in types)


def _check_keys(payload: dict, p: Path, keys: dict[str, type | tuple[type, ...]],
                required: bool) -> None:
    for key, kind in keys.items():
        if key not in payload:
            if required:
                raise BadInput(f"checkpoint {p} ({payload['format']}) lacks the key {key!r}")
            continue
        value = payload[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise BadInput(f"checkpoint {p}: key {key!r} is a {type(value).__name__}, "
                           f"expected {_type_name(kind)}")
        if key in STATE_DICTS and not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                          for k, v in value.items()):
            raise BadInput(f"checkpoint {p}: {key!r} is not a mapping of names to tensors")


def load_checkpoint(path: str | Path, expect: str | None = None, resume: bool = False,
                    kind: str | None = None) -> dict[str, Any]:
    """Read a checkpoint without executing pickled code; refuse anything that is not ours or
    lacks what its format needs. ``expect`` restricts the format, ``kind`` the kind of
    training run (supernet, standalone); ``resume`` also requires what continuing a training
    run needs (optimiser, schedule, RNG states, ...)."""
    p = Path(path)
    payload = _read(p)
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if not isinstance(fmt, str) or not fmt.startswith("edgessl-"):
        raise BadInput(f"checkpoint {p} is not an edgessl checkpoint (no edgessl format tag)")
    if fmt not in FORMATS:
        raise BadInput(f"checkpoint {p} has format {fmt!r}, which this edgessl does not read; "
                       f"known: {', '.join(FORMATS)}")
    if expect is not None and fmt != expect:
        raise BadInput(f"checkpoint {p} has format {fmt!r}; expected {expect!r}")
    _check_keys(payload, p, OPTIONAL, required=False)
    _resolution(payload.get("resolution"), str(p))
    if fmt == MODEL_FORMAT:
        _check_keys(payload, p, REQUIRED[MODEL_FORMAT], required=True)
        return payload
    found = payload.get("kind")
    if found not in TRAIN_KINDS:
        what = "lacks the key 'kind'" if "kind" not in payload else f"has kind {found!r}"
        raise BadInput(f"checkpoint {p} ({fmt}) {what}; expected {' or '.join(TRAIN_KINDS)}")
    if kind == "supernet" and found != kind:
        raise BadInput(f"checkpoint {p} trained one standalone network, not a supernet; "
                       "search needs a supernet checkpoint (edgessl train --space mobilenet)")
    if kind is not None and found != kind:
        raise BadInput(f"checkpoint {p} is a {found} training run; expected a {kind} one")
    _check_keys(payload, p, REQUIRED[found], required=True)
    if resume:
        _check_keys(payload, p, REQUIRED["resume"], required=True)
    return payload


def model_ref_to_dict(ref: Arch | str) -> dict[str, Any]:
    """The JSON-ready ``model`` entry of a checkpoint: an Arch or a baseline name."""
    if isinstance(ref, Arch):
        return {"kind": "arch", "arch": ref.to_dict()}
    return {"kind": "baseline", "name": ref}


def model_ref_from_dict(data: Any, path: str | Path = "") -> Arch | str:
    """The Arch or baseline name of a checkpoint's ``model`` entry."""
    where = f"checkpoint {path}: " if path else "checkpoint "
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind == "arch":
        return Arch.from_dict(data.get("arch"))
    if kind == "baseline" and isinstance(data.get("name"), str):
        from edgessl.baselines import get_baseline

        return get_baseline(data["name"]).name
    raise BadInput(f"{where}model entry {str(data)[:80]} is neither an arch nor a baseline")


def load_weights(module: nn.Module, state: dict, path: str | Path, what: str = "its model"
                 ) -> None:
    """``module.load_state_dict(state)``, a mismatch being one line naming the file."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, ValueError, TypeError, KeyError) as exc:
        raise BadInput(f"checkpoint {path} weights do not fit {what}: "
                       f"{str(exc).splitlines()[0][:160]}") from None


def save_model(path: str | Path, ref: Arch | str, model: nn.Module,
               meta: dict[str, Any] | None = None) -> Path:
    """Save a standalone backbone (``edgessl-model/1``)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return save_checkpoint(path, {"format": MODEL_FORMAT, "model": model_ref_to_dict(ref),
                                  "state_dict": state, "meta": meta or {}})


@dataclass
class Network:
    """A network read from a checkpoint: ``module`` in eval mode and what it is.

    ``kind``: ``model`` (an ``edgessl-model/1`` file), ``standalone`` (a training run of one
    network), ``subnet`` (cut from a supernet run) or ``supernet`` (the whole supernet).
    ``ref`` is the Arch or baseline name (None for a whole supernet)."""

    module: nn.Module
    kind: str
    ref: Arch | str | None
    path: str
    space: str | None = None
    resolution: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    step: int | None = None

    @property
    def name(self) -> str:
        return str(self.ref) if self.ref is not None else f"{self.space} supernet"

    def info(self) -> dict[str, Any]:
        """JSON-ready description (name, kind, training resolution, arch of a subnet)."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind,
                               "resolution": self.resolution}
        if self.kind == "subnet":
            out["arch"] = self.ref.to_dict()
        return out


def _pick_arch(space, choice: str | Arch, path: str) -> Arch:
    if isinstance(choice, Arch):
        arch = choice
    elif choice == "largest":
        return space.largest()
    elif choice == "smallest":
        return space.smallest()
    else:
        arch = Arch.load(choice)
    if arch.space != space.name:
        raise BadInput(f"--arch {choice} is of space {arch.space!r} but checkpoint {path} "
                       f"is a {space.name!r} supernet")
    return arch


def _resolution(value: Any, path: str) -> int | None:
    """A recorded training resolution: a positive integer or absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadInput(f"checkpoint {path}: recorded resolution {value!r} is not a positive "
                       "integer")
    return value


def _fresh(ref: Arch | str) -> nn.Module:
    """The network as training initialises it: the untrained reference of an SSL gain."""
    from edgessl.ops.init import zero_init_residuals

    module = build_model(ref)
    zero_init_residuals(module)
    return module


def load_network(path: str | Path, arch: str | Arch | None = None, *,
                 formats: tuple[str, ...] = FORMATS, supernet: bool = False,
                 init_random: bool = False, seed: int = 0) -> Network:
    """The network in checkpoint ``path``, for eval, search, export and bench.

    A supernet run gives its subnet ``arch`` (``largest`` by default, ``smallest``, an Arch
    or an Arch file), or with ``supernet`` the whole supernet (required: anything else is
    refused). ``formats`` restricts what is accepted (export takes ``edgessl-model/1``
    only). ``init_random`` gives the same network freshly initialised (seeded by ``seed``)."""
    path = str(path)
    if supernet:
        formats = tuple(f for f in formats if f == TRAIN_FORMAT)
    payload = load_checkpoint(path, formats[0] if len(formats) == 1 else None,
                              kind="supernet" if supernet else None)
    fmt = payload["format"]
    if fmt not in formats:
        raise BadInput(f"checkpoint {path} has format {fmt!r}; expected "
                       f"{' or '.join(repr(f) for f in formats)}")
    config = payload.get("config") or {}
    resolution = _resolution(payload.get("resolution") or config.get("resolution"), path)
    common = {"path": path, "config": config, "step": payload.get("step")}
    kind = "model" if fmt == MODEL_FORMAT else payload["kind"]
    torch.manual_seed(seed)
    if kind == "supernet":
        from edgessl.ops.init import zero_init_residuals
        from edgessl.spaces import get_space
        from edgessl.supernet import Supernet

        space = get_space(payload["space"])
        net = Supernet(space)
        if init_random:
            zero_init_residuals(net)
        else:
            load_weights(net, payload["backbone"], path, f"a {space.name!r} supernet")
        if supernet:
            return Network(net.eval(), "supernet", None, space=space.name,
                           resolution=resolution, **common)
        chosen = _pick_arch(space, arch or "largest", path)
        return Network(net.extract(chosen).eval(), "subnet", chosen, space=space.name,
                       resolution=resolution, **common)
    if arch not in (None, "largest", "smallest"):
        raise BadInput(f"--arch {arch} applies to supernet checkpoints; {path} holds one "
                       "standalone network")
    ref = model_ref_from_dict(payload["model"], path)
    if init_random:
        module = _fresh(ref)
    else:
        module = build_model(ref)
        load_weights(module, payload["state_dict" if kind == "model" else "backbone"], path)
    meta = payload.get("meta") or {}
    if kind == "model":
        resolution = _resolution(meta.get("train_resolution") or meta.get("resolution"), path)
    return Network(module.eval(), kind, ref, space=ref.space if isinstance(ref, Arch) else None,
                   resolution=resolution, meta=meta, **common)


def load_model(path: str | Path) -> tuple[nn.Module, Arch | str, dict[str, Any]]:
    """(module in eval mode, ref, meta) of an ``edgessl-model/1`` file: the standalone-model
    view of :func:`load_network`."""
    net = load_network(path, formats=(MODEL_FORMAT,))
    return net.module, net.ref, net.meta
