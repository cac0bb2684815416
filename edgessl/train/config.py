"""The training configuration: one typed, round-tripping record (stored in every checkpoint)."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from edgessl.errors import BadInput

# Fields a resumed run may change; every other field must match the checkpoint.
RESUMABLE = {"epochs", "max_steps", "time_limit", "device", "workers", "ckpt_every", "compile",
             "log_every", "precision"}
PRECISIONS = ("auto", "fp32", "bf16")
# torch.manual_seed takes seeds below 2**64 and numpy's generators any non-negative integer;
# every seed edgessl derives (per epoch, per image) is reduced modulo 2**64
SEED_LIMIT = 2**64


def check_seed(seed: int, option: str = "--seed") -> None:
    """Refuse a seed that torch or numpy cannot take."""
    if not 0 <= seed < SEED_LIMIT:
        raise BadInput(f"{option} {seed} must lie in 0..{SEED_LIMIT - 1}")


def _fits(value: Any, annotation: Any) -> bool:
    """Whether a stored config value has its field's type (ints pass for floats)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return any(_fits(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, typing.get_origin(annotation) or annotation)


@dataclass
class TrainConfig:
    """Everything a run depends on. ``space`` is a search space (supernet, sandwich rule) or
    ``baseline:NAME``; ``arch`` (an Arch dict) trains that one fixed network standalone."""

    data: str
    out: str
    ssl: str = "vicreg"
    space: str = "mobilenet"
    arch: dict | None = None
    init_from: str | None = None
    epochs: int = 10
    batch_size: int = 64
    resolution: int | None = None
    optimizer: str = "sgd"
    lr: float | None = None
    weight_decay: float | None = None
    warmup_epochs: float = 1.0
    num_sampled: int = 2
    slow_start: float = 0.0
    clip_grad: float = 5.0
    temperature: float | None = None
    target_momentum: float | None = None
    min_scale: float | None = None
    flip: bool | None = None
    local_crops: int = 0
    local_resolution: int | None = None
    seed: int = 0
    subset: int | None = None
    max_steps: int | None = None
    time_limit: float | None = None
    ckpt_every: int = 200
    log_every: int = 1
    workers: int | None = None
    compile: bool = False
    device: str = "auto"
    precision: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """The config of ``data`` (a checkpoint's or the command line's); a value of the
        wrong type (a hand-edited checkpoint) is refused, naming the field."""
        hints = typing.get_type_hints(cls)
        known = {f.name for f in fields(cls)}
        for key in ("data", "out"):
            if key not in data:
                raise BadInput(f"training config lacks {key!r}")
        for key, value in data.items():
            if key in known and not _fits(value, hints[key]):
                raise BadInput(f"training config: {key} = {value!r} should be of type "
                               f"{getattr(hints[key], '__name__', hints[key])}")
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def standalone(self) -> bool:
        return self.arch is not None or self.space.startswith("baseline:")

    def check(self) -> None:
        """Refuse values that cannot work, naming the option."""
        positive = {"--epochs": self.epochs, "--batch-size": self.batch_size,
                    "--ckpt-every": self.ckpt_every, "--log-every": self.log_every}
        for name, value in positive.items():
            if value < 1:
                raise BadInput(f"{name} {value} must be at least 1")
        if self.batch_size < 2:
            raise BadInput(f"--batch-size {self.batch_size} must be at least 2")
        if self.resolution is not None and not 8 <= self.resolution <= 1024:
            raise BadInput(f"--resolution {self.resolution} must lie in 8..1024")
        if self.num_sampled < 0:
            raise BadInput(f"--num-sampled {self.num_sampled} must be >= 0")
        if not 0 <= self.slow_start < 1:
            raise BadInput(f"--slow-start {self.slow_start} must lie in [0, 1)")
        if self.lr is not None and not self.lr > 0:
            raise BadInput(f"--lr {self.lr} must be positive")
        if self.temperature is not None and not self.temperature > 0:
            raise BadInput(f"--temperature {self.temperature} must be positive")
        if self.min_scale is not None and not 0 < self.min_scale <= 1:
            raise BadInput(f"--min-scale {self.min_scale} must lie in (0, 1]")
        non_negative = {"--workers": self.workers, "--weight-decay": self.weight_decay,
                        "--warmup-epochs": self.warmup_epochs, "--clip-grad": self.clip_grad}
        for name, value in non_negative.items():
            if value is not None and not value >= 0:
                raise BadInput(f"{name} {value} must be >= 0")
        for name, value in (("--subset", self.subset), ("--max-steps", self.max_steps)):
            if value is not None and value < 1:
                raise BadInput(f"{name} {value} must be at least 1")
        if self.time_limit is not None and not self.time_limit > 0:
            raise BadInput(f"--time-limit {self.time_limit} must be positive")
        check_seed(self.seed)
        self._check_local_crops()
        self._check_target_momentum()
        if self.device not in ("auto", "cpu", "cuda"):
            raise BadInput(f"--device {self.device!r}; allowed: auto, cpu, cuda")
        if self.precision not in PRECISIONS:
            raise BadInput(f"--precision {self.precision!r}; allowed: {', '.join(PRECISIONS)}")

    def _needs(self, option: str, has: Callable[[type], bool], why: str = "") -> None:
        """Refuse ``option`` unless the --ssl objective ``has`` what it needs, naming the
        objectives that do."""
        from edgessl.ssl import OBJECTIVES

        objective = OBJECTIVES.get(self.ssl)
        if objective is not None and not has(objective):
            able = ", ".join(n for n, o in OBJECTIVES.items() if has(o))
            raise BadInput(f"{option} needs --ssl {able}{why}, not {self.ssl!r}")

    def _check_target_momentum(self) -> None:
        m = self.target_momentum
        if m is None:
            return
        if not 0 <= m < 1:
            raise BadInput(f"--target-momentum {m} must lie in [0, 1)")
        self._needs(f"--target-momentum {m}", lambda o: o.momentum is not None,
                    " (a momentum target)")

    def _check_local_crops(self) -> None:
        from edgessl.data.transforms import LOCAL_MIN_SCALE

        if self.local_crops < 0:
            raise BadInput(f"--local-crops {self.local_crops} must be >= 0")
        if self.local_resolution is not None and not 8 <= self.local_resolution <= 1024:
            raise BadInput(f"--local-resolution {self.local_resolution} must lie in 8..1024")
        if not self.local_crops:
            return
        self._needs(f"--local-crops {self.local_crops}", lambda o: o.multi_crop)
        if self.min_scale is not None and self.min_scale <= LOCAL_MIN_SCALE:
            raise BadInput(f"--min-scale {self.min_scale} leaves no room for local crops (they "
                           f"take {LOCAL_MIN_SCALE}..min-scale of the area)")


def uses_bf16(precision: str, cuda: bool) -> bool:
    """Whether steps run under bf16 autocast: ``auto`` means on CUDA only (on CPUs it pays
    for dense convolutions on AMX hardware and not for depthwise ones, BENCHMARKS.md)."""
    return precision == "bf16" or (precision == "auto" and cuda)


def merge_resume(saved: TrainConfig, given: dict[str, Any]) -> TrainConfig:
    """The saved config with the options given on the command line; an option that would
    change what is trained (data, space, ssl, ...) is refused, naming it."""
    data = saved.to_dict()
    for key, value in given.items():
        if value is None or key == "out":
            continue
        if key in RESUMABLE:
            data[key] = value
        elif value != data.get(key):
            raise BadInput(f"--{key.replace('_', '-')} {value!r} differs from the checkpoint's "
                           f"{data.get(key)!r}; a resumed run keeps its training setup")
    return TrainConfig.from_dict(data)
