"""Training checkpoints (``RUN/last.ckpt``, atomic, ``edgessl-train/1``), RNG states, and the
metrics CSV. Everything saved is tensors and plain data, loaded with ``weights_only``."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgessl.checkpoint import (
    TRAIN_FORMAT,
    load_checkpoint,
    load_weights,
    model_ref_to_dict,
    save_checkpoint,
)
from edgessl.errors import BadInput
from edgessl.utils import atomic_write_text


def rng_states() -> dict[str, Any]:
    kind, key, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate(),
                             "numpy": [kind, torch.from_numpy(key.astype(np.int64)), int(pos),
                                       int(has_gauss), float(gauss)]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tuples(state["python"]))
    kind, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def save_train_state(path: Path, *, config: dict, ref, space: str | None, model, optimizer,
                     scheduler, step: int, extra: dict | None = None) -> None:
    """Write the whole run state atomically: a crash mid-write keeps the previous file."""
    backbone = model.backbone
    objective = model.objective
    payload = {
        "format": TRAIN_FORMAT,
        "kind": "standalone" if ref is not None else "supernet",
        "space": space,
        "model": model_ref_to_dict(ref) if ref is not None else None,
        "config": config,
        "backbone": {k: v.detach().cpu() for k, v in backbone.state_dict().items()},
        "objective": {k: v.detach().cpu() for k, v in objective.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_states(),
        "step": step,
        **(extra or {}),
    }
    save_checkpoint(path, payload)


def load_train_state(path: Path) -> dict[str, Any]:
    """A training checkpoint with everything a resumed run needs (schema-checked)."""
    payload = load_checkpoint(path, expect=TRAIN_FORMAT, resume=True)
    if payload["step"] < 0:
        raise BadInput(f"checkpoint {path}: step {payload['step']} is negative")
    return payload


def restore(payload: dict, model, optimizer, scheduler, path: str | Path = "") -> None:
    """Load weights, optimiser, schedule and RNG states of a training checkpoint: the one
    resume path; anything that does not fit is one line naming the file and the part."""
    load_weights(model.backbone, payload["backbone"], path, "this run's network")
    load_weights(model.objective, payload["objective"], path, "this run's SSL objective")
    sched = payload["scheduler"]
    if not isinstance(sched.get("last_epoch"), int) or not isinstance(sched.get("base_lrs"),
                                                                      list):
        raise BadInput(f"checkpoint {path}: scheduler state lacks last_epoch or base_lrs")
    parts = (("optimizer", optimizer.load_state_dict), ("scheduler", scheduler.load_state_dict),
             ("rng", set_rng_states))
    for key, load in parts:
        try:
            load(payload[key])
        except (RuntimeError, ValueError, TypeError, KeyError, IndexError) as exc:
            raise BadInput(f"checkpoint {path}: {key} state does not fit this run: "
                           f"{str(exc).splitlines()[0][:120] or type(exc).__name__}") from None


def metrics_rows(path: Path, upto: int) -> list[dict]:
    """The rows of a run's metrics CSV up to step ``upto`` (a resumed run keeps those); a file
    that is not what ``train`` wrote (edited by hand, garbage) is refused, naming the line."""
    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None:
                return []
            if "step" not in reader.fieldnames:
                raise BadInput(f"{path} has no 'step' column (header "
                               f"{','.join(reader.fieldnames)[:60]!r}); restore it or delete "
                               "the file to resume")
            rows = []
            for row in reader:
                step = row.get("step")
                if step is None or not step.strip().isdigit():
                    raise BadInput(f"{path} line {reader.line_num}: step {step!r} is not a "
                                   "step number; restore it or delete the file to resume")
                if int(step) <= upto:
                    rows.append(row)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise BadInput(f"{path} is not a readable CSV ({str(exc)[:80]}); restore it or "
                       "delete the file to resume") from None
    return rows


class MetricsCSV:
    """``RUN/metrics.csv``: one row per logged step. On resume, rows past the checkpoint's step
    are dropped (they will be trained again)."""

    def __init__(self, path: Path, columns: list[str], resume_step: int | None = None):
        self.path, self.columns = path, columns
        rows = metrics_rows(path, resume_step) if resume_step is not None else []
        buf = io.StringIO()
        writer = csv.DictWriter(buf, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(path, buf.getvalue())
        self._file = open(path, "a", newline="")
        self._writer = csv.DictWriter(self._file, columns, extrasaction="ignore")

    def write(self, row: dict[str, Any]) -> None:
        self._writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                               for k, v in row.items()})
        self._file.flush()

    def close(self) -> None:
        self._file.close()
