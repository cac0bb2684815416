"""Block specifications: pure, hashable data with exact costs and a canonical latency key.

A spec is one block at one input shape and one choice. The search spaces turn an Arch into a
list of specs; the cost model sums their MACs and parameters, the latency table is keyed by
``spec.key``, and :func:`edgessl.ops.layers.build` turns a spec into an ordinary module.
MACs count convolution and linear multiply-accumulates only (the torchvision/OFA convention).
"""

from __future__ import annotations

from dataclasses import dataclass


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor`` without going 10% below it (MobileNet)."""
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def conv_out(hw: int, kernel: int, stride: int) -> int:
    """Output size of a 'same'-padded convolution (padding kernel // 2)."""
    return (hw + 2 * (kernel // 2) - kernel) // stride + 1


def _conv_cost(cin: int, cout: int, k: int, out_hw: int, groups: int = 1, bias: bool = False):
    macs = out_hw * out_hw * cout * (cin // groups) * k * k
    params = cout * (cin // groups) * k * k + (cout if bias else 0)
    return macs, params


@dataclass(frozen=True)
class ConvSpec:
    """Stem: conv kxk/stride + BN + activation, optionally followed by a 3x3/2 max-pool."""

    in_ch: int
    out_ch: int
    hw: int
    kernel: int
    stride: int
    act: str
    pool: bool = False
    kind = "conv"

    @property
    def out_hw(self) -> int:
        hw = conv_out(self.hw, self.kernel, self.stride)
        return conv_out(hw, 3, 2) if self.pool else hw

    def cost(self) -> tuple[int, int]:
        macs, params = _conv_cost(self.in_ch, self.out_ch, self.kernel,
                                  conv_out(self.hw, self.kernel, self.stride))
        return macs, params + 2 * self.out_ch

    @property
    def key(self) -> str:
        return (f"conv|in={self.hw}x{self.hw}x{self.in_ch}|out={self.out_hw}x{self.out_hw}x"
                f"{self.out_ch}|k={self.kernel}|s={self.stride}|pool={int(self.pool)}|act={self.act}")


@dataclass(frozen=True)
class MBConvSpec:
    """Inverted residual: [1x1 expand] -> kxk depthwise -> [squeeze-excite] -> 1x1 project.

    ``mid_ch == in_ch`` means no expand conv (MobileNet's first block). ``se_ch`` is the
    squeeze width (0: no SE). The residual is used when stride is 1 and widths agree.
    """

    in_ch: int
    mid_ch: int
    out_ch: int
    hw: int
    kernel: int
    stride: int
    se_ch: int
    act: str
    kind = "mbconv"

    @property
    def out_hw(self) -> int:
        return conv_out(self.hw, self.kernel, self.stride)

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_ch == self.out_ch

    @property
    def has_expand(self) -> bool:
        return self.mid_ch != self.in_ch

    def cost(self) -> tuple[int, int]:
        macs = params = 0
        if self.has_expand:
            m, p = _conv_cost(self.in_ch, self.mid_ch, 1, self.hw)
            macs, params = macs + m, params + p + 2 * self.mid_ch
        m, p = _conv_cost(self.mid_ch, self.mid_ch, self.kernel, self.out_hw, groups=self.mid_ch)
        macs, params = macs + m, params + p + 2 * self.mid_ch
        if self.se_ch:
            for cin, cout in ((self.mid_ch, self.se_ch), (self.se_ch, self.mid_ch)):
                m, p = _conv_cost(cin, cout, 1, 1, bias=True)
                macs, params = macs + m, params + p
        m, p = _conv_cost(self.mid_ch, self.out_ch, 1, self.out_hw)
        return macs + m, params + p + 2 * self.out_ch

    @property
    def key(self) -> str:
        return (f"mbconv|in={self.hw}x{self.hw}x{self.in_ch}|out={self.out_hw}x{self.out_hw}x"
                f"{self.out_ch}|k={self.kernel}|mid={self.mid_ch}|s={self.stride}"
                f"|se={self.se_ch}|act={self.act}")


@dataclass(frozen=True)
class _ResNetBlockSpec:
    """What ResNet blocks share: widths, input size, stride, and a 1x1 projection shortcut
    when the stride or the width changes."""

    in_ch: int
    mid_ch: int
    out_ch: int
    hw: int
    stride: int
    kind = ""

    @property
    def out_hw(self) -> int:
        return conv_out(self.hw, 3, self.stride)

    @property
    def downsample(self) -> bool:
        return self.stride != 1 or self.in_ch != self.out_ch

    def _convs(self) -> list[tuple[int, int]]:  # pragma: no cover - abstract
        """(MACs, params) of each conv on the residual branch."""
        raise NotImplementedError

    def _bn_widths(self) -> list[int]:  # pragma: no cover - abstract
        """Widths of the branch's BatchNorms (2 parameters per channel)."""
        raise NotImplementedError

    def cost(self) -> tuple[int, int]:
        parts = self._convs()
        bn = 2 * sum(self._bn_widths())
        if self.downsample:
            parts.append(_conv_cost(self.in_ch, self.out_ch, 1, self.out_hw))
            bn += 2 * self.out_ch
        return sum(m for m, _ in parts), sum(p for _, p in parts) + bn

    @property
    def key(self) -> str:
        return (f"{self.kind}|in={self.hw}x{self.hw}x{self.in_ch}|out={self.out_hw}x"
                f"{self.out_hw}x{self.out_ch}|mid={self.mid_ch}|s={self.stride}")


@dataclass(frozen=True)
class BottleneckSpec(_ResNetBlockSpec):
    """ResNet bottleneck: 1x1 -> 3x3/stride -> 1x1, with a 1x1 projection shortcut if needed."""

    kind = "bottleneck"

    def _convs(self) -> list[tuple[int, int]]:
        return [_conv_cost(self.in_ch, self.mid_ch, 1, self.hw),
                _conv_cost(self.mid_ch, self.mid_ch, 3, self.out_hw),
                _conv_cost(self.mid_ch, self.out_ch, 1, self.out_hw)]

    def _bn_widths(self) -> list[int]:
        return [self.mid_ch, self.mid_ch, self.out_ch]


@dataclass(frozen=True)
class BasicBlockSpec(_ResNetBlockSpec):
    """ResNet basic block: 3x3/stride (to ``mid_ch``) -> 3x3 (to ``out_ch``), with a 1x1
    projection shortcut if needed. ``mid_ch == out_ch`` is ResNet18/34's block."""

    kind = "basic"

    def _convs(self) -> list[tuple[int, int]]:
        return [_conv_cost(self.in_ch, self.mid_ch, 3, self.out_hw),
                _conv_cost(self.mid_ch, self.out_ch, 3, self.out_hw)]

    def _bn_widths(self) -> list[int]:
        return [self.mid_ch, self.out_ch]


@dataclass(frozen=True)
class MBHeadSpec:
    """MobileNetV3 head: 1x1 expand + BN + act, global pool, 1x1 feature mix + act, flatten."""

    in_ch: int
    expand_ch: int
    out_ch: int
    hw: int
    act: str
    kind = "mbhead"
    out_hw = 1

    def cost(self) -> tuple[int, int]:
        m1, p1 = _conv_cost(self.in_ch, self.expand_ch, 1, self.hw)
        m2, p2 = _conv_cost(self.expand_ch, self.out_ch, 1, 1)
        return m1 + m2, p1 + 2 * self.expand_ch + p2

    @property
    def key(self) -> str:
        return (f"mbhead|in={self.hw}x{self.hw}x{self.in_ch}|mid={self.expand_ch}"
                f"|out={self.out_ch}|act={self.act}")


@dataclass(frozen=True)
class PoolHeadSpec:
    """Global average pool and flatten (ResNet)."""

    in_ch: int
    hw: int
    kind = "poolhead"
    out_hw = 1

    @property
    def out_ch(self) -> int:
        return self.in_ch

    def cost(self) -> tuple[int, int]:
        return 0, 0

    @property
    def key(self) -> str:
        return f"poolhead|in={self.hw}x{self.hw}x{self.in_ch}"


@dataclass(frozen=True)
class LinearSpec:
    """A classifier: features to ``out_ch`` classes (for the 1000-class cost convention)."""

    in_ch: int
    out_ch: int
    kind = "linear"
    hw = 1
    out_hw = 1

    def cost(self) -> tuple[int, int]:
        return self.in_ch * self.out_ch, self.in_ch * self.out_ch + self.out_ch

    @property
    def key(self) -> str:
        return f"linear|in={self.in_ch}|out={self.out_ch}"


LayerSpec = (ConvSpec | MBConvSpec | BottleneckSpec | BasicBlockSpec | MBHeadSpec | PoolHeadSpec
             | LinearSpec)
