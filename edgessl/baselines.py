"""Handcrafted torchvision networks usable by name wherever an Arch is accepted.

Two kinds of names (docs/study.md has the grammar and the families):

- the five registered networks of :data:`BASELINES` (``resnet18``, ``resnet50``,
  ``mobilenet_v2``, ``mobilenet_v3_large``, ``mobilenet_v3_small``);
- **family members**, built with torchvision's own constructors and named canonically:
  ``resnet-basic-d2.3.4.2-g1-w64`` is ``torchvision.models.ResNet(BasicBlock, [2, 3, 4, 2],
  groups=1, width_per_group=64)``, ``resnet-bottleneck-d3.4.6.3-g32-w4`` is resnext50_32x4d,
  and ``mbv2-w1.5-n1.2.3.4.3.3.1`` is ``MobileNetV2(width_mult=1.5,
  inverted_residual_setting=...)`` with those block counts per row of torchvision's table.

``build_baseline(name)`` gives a backbone (the ImageNet classifier replaced by ``Identity``, so
the output is the feature vector); ``num_classes=1000`` keeps torchvision's full network, on
which MFLOPs are counted. Family members also carry an exact analytic count of their MACs and
parameters (microseconds, for whole families; tests hold it to fvcore's count).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from edgessl.errors import BadInput


def _torchvision_models():
    """``torchvision.models``, imported on first use: importing torchvision costs seconds,
    and most commands (``--help``, costs of a space's networks) never build one."""
    import torchvision.models

    return torchvision.models


def _with_head(model: nn.Module, feature_dim: int, num_classes: int) -> nn.Module:
    """``model`` with its ImageNet classifier replaced (1000 keeps it; 0 gives features)."""
    if num_classes != 1000:
        head = nn.Linear(feature_dim, num_classes) if num_classes else nn.Identity()
        if hasattr(model, "fc"):
            model.fc = head
        else:
            model.classifier[-1] = head
    model.feature_dim = feature_dim
    return model


@dataclass(frozen=True)
class Baseline:
    """A named torchvision network and its published MFLOPs at 224 (torchvision's docs)."""

    name: str  # also the name of its constructor in torchvision.models
    published_mflops: float
    feature_dim: int

    def build(self, num_classes: int = 0) -> nn.Module:
        factory: Callable[..., nn.Module] = getattr(_torchvision_models(), self.name)
        return _with_head(factory(weights=None), self.feature_dim, num_classes)

    def analytic_cost(self, resolution: int) -> tuple[int, int] | None:
        """None: a registered network is counted on the built network (cost.flops)."""
        return None


BASELINES: dict[str, Baseline] = {b.name: b for b in (
    Baseline("resnet18", 1814.0, 512),
    Baseline("resnet50", 4089.0, 2048),
    Baseline("mobilenet_v2", 300.8, 1280),
    Baseline("mobilenet_v3_large", 216.6, 1280),
    Baseline("mobilenet_v3_small", 56.5, 1024),
)}


class _Counter:
    """Conv (no bias) + BatchNorm + linear MACs and parameters, layer by layer, with
    torchvision's padding (kernel // 2) on square maps of side ``size``."""

    def __init__(self, size: int):
        self.size, self.macs, self.params = size, 0, 0

    def conv(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
             size: int | None = None) -> int:
        """Count a conv + its BatchNorm on maps of side ``size`` (default: the current one);
        returns the output side."""
        side = self.size if size is None else size
        out = (side + 2 * (k // 2) - k) // stride + 1
        weights = cout * (cin // groups) * k * k
        self.macs += out * out * weights
        self.params += weights + 2 * cout
        return out

    def linear(self, cin: int, cout: int) -> None:
        self.macs += cin * cout
        self.params += cin * cout + cout


RESNET_WIDTHS = (64, 128, 256, 512)
RESNET_BLOCKS = {"basic": "BasicBlock", "bottleneck": "Bottleneck"}  # torchvision's classes
RESNET_EXPANSION = {"basic": 1, "bottleneck": 4}  # their ``expansion`` (a test holds it)
MAX_BLOCKS = 64  # per stage / row: a bound on what a name may ask for


@dataclass(frozen=True)
class ResNetMember:
    """``torchvision.models.ResNet(block, depths, groups=groups, width_per_group=width)``."""

    block: str
    depths: tuple[int, int, int, int]
    groups: int = 1
    width: int = 64

    def __post_init__(self) -> None:
        if self.block not in RESNET_BLOCKS:
            raise BadInput(f"ResNet block {self.block!r}; allowed: basic, bottleneck")
        if len(self.depths) != 4 or not all(1 <= d <= MAX_BLOCKS for d in self.depths):
            raise BadInput(f"ResNet depths {self.depths}: four stages of 1..{MAX_BLOCKS} blocks")
        if self.groups < 1 or self.width < 1:
            raise BadInput(f"ResNet groups {self.groups} and width {self.width} must be >= 1")
        if self.block == "basic" and (self.groups, self.width) != (1, 64):
            raise BadInput(f"{self.name}: torchvision's BasicBlock supports only groups 1 and "
                           "width 64 (-g1-w64)")

    @property
    def name(self) -> str:
        return (f"resnet-{self.block}-d{'.'.join(map(str, self.depths))}"
                f"-g{self.groups}-w{self.width}")

    @property
    def expansion(self) -> int:
        return RESNET_EXPANSION[self.block]

    @property
    def feature_dim(self) -> int:
        return RESNET_WIDTHS[-1] * self.expansion

    published_mflops = None

    def build(self, num_classes: int = 0) -> nn.Module:
        tv = _torchvision_models()
        block = getattr(tv.resnet, RESNET_BLOCKS[self.block])
        model = tv.ResNet(block, list(self.depths), groups=self.groups,
                          width_per_group=self.width)
        return _with_head(model, self.feature_dim, num_classes)

    def analytic_cost(self, resolution: int) -> tuple[int, int]:
        """(MACs, params) of the network with a 1000-class classifier at ``resolution``."""
        c = _Counter(resolution)
        c.size = c.conv(3, 64, 7, 2)
        c.size = (c.size + 2 - 3) // 2 + 1  # max-pool 3x3, stride 2, padding 1
        inplanes = 64
        for i, (planes, n) in enumerate(zip(RESNET_WIDTHS, self.depths, strict=True)):
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                side, out = c.size, planes * self.expansion
                if self.block == "basic":
                    c.size = c.conv(inplanes, planes, 3, stride)
                    c.conv(planes, planes, 3)
                else:
                    mid = int(planes * (self.width / 64.0)) * self.groups
                    c.conv(inplanes, mid, 1)
                    c.size = c.conv(mid, mid, 3, stride, self.groups)
                    c.conv(mid, out, 1)
                if stride != 1 or inplanes != out:
                    c.conv(inplanes, out, 1, stride, size=side)
                inplanes = out
        c.linear(inplanes, 1000)
        return c.macs, c.params


MBV2_ROWS = ((1, 16, 1), (6, 24, 2), (6, 32, 2), (6, 64, 2), (6, 96, 1), (6, 160, 2),
             (6, 320, 1))  # torchvision's (t, c, s); the block counts n are the member's
MBV2_DEFAULT_COUNTS = (1, 2, 3, 4, 3, 3, 1)


def _make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's channel rounding (``torchvision.models._utils._make_divisible``)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


@dataclass(frozen=True)
class MobileNetV2Member:
    """``torchvision.models.MobileNetV2(width_mult, inverted_residual_setting)`` with
    torchvision's expand ratios, widths and strides and ``counts`` blocks per row."""

    width_mult: float
    counts: tuple[int, ...] = MBV2_DEFAULT_COUNTS

    def __post_init__(self) -> None:
        if not 0.1 <= self.width_mult <= 4.0:
            raise BadInput(f"MobileNetV2 width multiplier {self.width_mult} must lie in 0.1..4")
        if len(self.counts) != len(MBV2_ROWS) or not all(1 <= n <= MAX_BLOCKS
                                                         for n in self.counts):
            raise BadInput(f"MobileNetV2 block counts {self.counts}: {len(MBV2_ROWS)} rows of "
                           f"1..{MAX_BLOCKS} blocks")

    @property
    def name(self) -> str:
        return f"mbv2-w{float(self.width_mult)!r}-n{'.'.join(map(str, self.counts))}"

    @property
    def feature_dim(self) -> int:
        return _make_divisible(1280 * max(1.0, self.width_mult))

    published_mflops = None

    def setting(self) -> list[list[int]]:
        return [[t, c, n, s] for (t, c, s), n in zip(MBV2_ROWS, self.counts, strict=True)]

    def build(self, num_classes: int = 0) -> nn.Module:
        model = _torchvision_models().MobileNetV2(width_mult=self.width_mult,
                                                  inverted_residual_setting=self.setting())
        return _with_head(model, self.feature_dim, num_classes)

    def analytic_cost(self, resolution: int) -> tuple[int, int]:
        """(MACs, params) of the network with a 1000-class classifier at ``resolution``."""
        c = _Counter(resolution)
        inp = _make_divisible(32 * self.width_mult)
        c.size = c.conv(3, inp, 3, 2)
        for t, ch, n, s in self.setting():
            out = _make_divisible(ch * self.width_mult)
            for i in range(n):
                hidden = int(round(inp * t))
                if t != 1:
                    c.conv(inp, hidden, 1)
                c.size = c.conv(hidden, hidden, 3, s if i == 0 else 1, groups=hidden)
                c.conv(hidden, out, 1)
                inp = out
        c.conv(inp, self.feature_dim, 1)
        c.linear(self.feature_dim, 1000)
        return c.macs, c.params


Member = ResNetMember | MobileNetV2Member
Handcrafted = Baseline | Member

_RESNET = re.compile(r"resnet-(?P<block>[a-z]+)-d(?P<depths>[0-9.]+)(?:-g(?P<g>\d+)-w(?P<w>\d+))?")
_MBV2 = re.compile(r"mbv2-w(?P<w>\d+(?:\.\d+)?)-n(?P<counts>[0-9.]+)")
GRAMMAR = ("resnet-{basic|bottleneck}-dN1.N2.N3.N4[-gGROUPS-wWIDTH] or "
           "mbv2-wMULT-nN1.N2.N3.N4.N5.N6.N7")


def _ints(text: str, name: str) -> tuple[int, ...]:
    parts = text.split(".")
    if not all(p.isdigit() for p in parts):
        raise BadInput(f"{name}: block counts {text!r} are not integers joined by dots")
    return tuple(int(p) for p in parts)


def parse_member(name: str) -> Member | None:
    """The family member called ``name`` (defaults -g1-w64 may be left out), None when the
    name is not in the family grammar; :class:`BadInput` when it is, with bad values."""
    if m := _RESNET.fullmatch(name):
        return ResNetMember(m["block"], _ints(m["depths"], name),
                            int(m["g"] or 1), int(m["w"] or 64))
    if m := _MBV2.fullmatch(name):
        return MobileNetV2Member(float(m["w"]), _ints(m["counts"], name))
    return None


def get_baseline(name: str) -> Handcrafted:
    """The registered network or family member called ``name`` (an optional ``baseline:``
    prefix is accepted); ``.name`` is its canonical name."""
    key = name.removeprefix("baseline:")
    if key in BASELINES:
        return BASELINES[key]
    member = parse_member(key)
    if member is not None:
        return member
    if key.startswith(("resnet-", "mbv2-")):
        raise BadInput(f"unknown baseline {name!r}: family members are named {GRAMMAR}")
    raise BadInput(f"unknown baseline {name!r}; known: {', '.join(BASELINES)} or a family "
                   "member (edgessl study --list)")


def is_baseline(name: str) -> bool:
    """Whether ``name`` names a registered network or a valid family member."""
    try:
        get_baseline(name)
    except BadInput:
        return False
    return True


def build_baseline(name: str, num_classes: int = 0) -> nn.Module:
    return get_baseline(name).build(num_classes)


# ---- families: the grids of the paper's study (Girish et al., 2022) -------------------------
GRID_DEPTHS = (2, 3, 4)
BOTTLENECK_SHAPES = ((1, 64), (1, 32), (1, 128), (32, 4))  # (groups, width per group)
MBV2_WIDTHS = (1.0, 1.5, 2.0, 2.5, 3.0)
MBV2_GRID_ROWS = (1, 2, 3, 4, 5)  # rows whose block count varies over GRID_DEPTHS
TORCHVISION_MEMBERS = {  # torchvision model -> the family member that is the same network
    "resnet18": "resnet-basic-d2.2.2.2-g1-w64",
    "resnet34": "resnet-basic-d3.4.6.3-g1-w64",
    "resnet50": "resnet-bottleneck-d3.4.6.3-g1-w64",
    "resnext50_32x4d": "resnet-bottleneck-d3.4.6.3-g32-w4",
    "wide_resnet50_2": "resnet-bottleneck-d3.4.6.3-g1-w128",
    "mobilenet_v2": "mbv2-w1.0-n1.2.3.4.3.3.1",
}


def _resnets(block: str) -> list[Member]:
    grid = list(itertools.product(GRID_DEPTHS, repeat=4))
    shapes = [(1, 64)] if block == "basic" else BOTTLENECK_SHAPES
    members = [ResNetMember(block, d, g, w) for g, w in shapes for d in grid]
    extra = [get_baseline(n) for n in TORCHVISION_MEMBERS.values()
             if n.startswith(f"resnet-{block}-")]
    return members + [m for m in extra if m not in members]


def _mbv2s() -> list[Member]:
    out = []
    for w in MBV2_WIDTHS:
        for counts in itertools.product(GRID_DEPTHS, repeat=len(MBV2_GRID_ROWS)):
            full = list(MBV2_DEFAULT_COUNTS)
            for row, n in zip(MBV2_GRID_ROWS, counts, strict=True):
                full[row] = n
            out.append(MobileNetV2Member(w, tuple(full)))
    return out


@dataclass(frozen=True)
class Family:
    """A named grid of family members (in a fixed order)."""

    name: str
    description: str
    make: Callable[[], list[Member]]

    def members(self) -> list[Member]:
        return _family_members(self.name)


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("resnet", "resnet-basic + resnet-bottleneck",
           lambda: _resnets("basic") + _resnets("bottleneck")),
    Family("resnet-basic", "basic blocks, stage depths {2,3,4}^4; + resnet34",
           lambda: _resnets("basic")),
    Family("resnet-bottleneck", "stage depths {2,3,4}^4 x (groups, width) (1,64) (1,32) "
           "(1,128) (32,4); + resnet50, resnext50_32x4d, wide_resnet50_2",
           lambda: _resnets("bottleneck")),
    Family("mbv2", "MobileNetV2: width {1,1.5,2,2.5,3} x blocks {2,3,4} in rows 2-6", _mbv2s),
)}


@functools.cache
def _family_members(name: str) -> list[Member]:
    return FAMILIES[name].make()


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise BadInput(f"unknown family {name!r}; known: {', '.join(FAMILIES)}") from None
