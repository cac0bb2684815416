"""ResNet18-like space of basic blocks: the family around the network edge users pick by habit.

Stem conv7x7/2 + max-pool, four stages of widths 64/128/256/512 x width multiplier with
strides 1/2/2/2, one or two basic blocks per stage, and the width of each block's first 3x3
conv (mid = out x expand). The largest member is ResNet18 exactly; the smallest is a
half-width ResNet10. Dense 3x3 convolutions run several times more MACs per second than
depthwise ones on CPUs (BENCHMARKS.md), which is why this space trains fastest there.
"""

from __future__ import annotations

from edgessl.ops.specs import BasicBlockSpec, ConvSpec, PoolHeadSpec, conv_out, make_divisible
from edgessl.spaces.base import SearchSpace

STAGE_WIDTHS = (64, 128, 256, 512)
STRIDES = (1, 2, 2, 2)
STEM = 64


class ResNet18Space(SearchSpace):
    name = "resnet18"
    resolutions = (128, 160, 192, 224)
    width_mults = (0.5, 0.75, 1.0)
    stage_depths = ((1, 2),) * 4
    kernels = (3,)
    expands = (0.5, 0.75, 1.0)

    def _hw_in(self, resolution: int, stage: int, index: int) -> int:
        hw = conv_out(conv_out(resolution, 7, 2), 3, 2)
        for i in range(stage):
            hw = conv_out(hw, 3, STRIDES[i])
        return hw if index == 0 else conv_out(hw, 3, STRIDES[stage])

    def pre_specs(self, resolution, width_mult):
        return (ConvSpec(3, make_divisible(STEM * width_mult), resolution, 7, 2, "relu",
                         pool=True),)

    def block_spec(self, resolution, width_mult, stage, index, kernel, expand):
        out_ch = make_divisible(STAGE_WIDTHS[stage] * width_mult)
        if index == 0:
            prev = STAGE_WIDTHS[stage - 1] if stage else STEM
            in_ch, stride = make_divisible(prev * width_mult), STRIDES[stage]
        else:
            in_ch, stride = out_ch, 1
        mid = make_divisible(out_ch * expand)
        return BasicBlockSpec(in_ch, mid, out_ch, self._hw_in(resolution, stage, index), stride)

    def post_specs(self, resolution, width_mult):
        hw = self._hw_in(resolution, len(STAGE_WIDTHS) - 1, 1)
        return (PoolHeadSpec(make_divisible(STAGE_WIDTHS[-1] * width_mult), hw),)
