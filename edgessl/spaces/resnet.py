"""ResNet-like space of bottleneck blocks (as in Once-for-All's ResNet50 space).

Stem conv7x7/2 + max-pool, four stages of widths 256/512/1024/2048 x width multiplier with
strides 1/2/2/2, elastic depth per stage (up to ResNet50's 3/4/6/3), bottleneck expand ratio
(mid = out x expand; 0.25 is ResNet50's) and width. The largest member is ResNet50 exactly.
"""

from __future__ import annotations

from edgessl.ops.specs import BottleneckSpec, ConvSpec, PoolHeadSpec, conv_out, make_divisible
from edgessl.spaces.base import SearchSpace

STAGE_WIDTHS = (256, 512, 1024, 2048)
STRIDES = (1, 2, 2, 2)
STEM = 64


class ResNetSpace(SearchSpace):
    name = "resnet"
    resolutions = (128, 160, 192, 224)
    width_mults = (0.65, 0.8, 1.0)
    stage_depths = ((1, 2, 3), (2, 3, 4), (4, 5, 6), (1, 2, 3))
    kernels = (3,)
    expands = (0.15, 0.2, 0.25)

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
        mid = make_divisible(round(out_ch * expand))
        return BottleneckSpec(in_ch, mid, out_ch, self._hw_in(resolution, stage, index), stride)

    def post_specs(self, resolution, width_mult):
        hw = self._hw_in(resolution, len(STAGE_WIDTHS) - 1, 1)
        return (PoolHeadSpec(make_divisible(STAGE_WIDTHS[-1] * width_mult), hw),)
