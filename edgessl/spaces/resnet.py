"""ResNet-like spaces: a shared skeleton, and the bottleneck space of Once-for-All's ResNet50.

Stem conv7x7/2 + max-pool, four stages with strides 1/2/2/2 and widths x width multiplier,
elastic depth per stage and a middle width per block (mid = out x expand). ``resnet``: stage
widths 256/512/1024/2048, bottleneck blocks, depth up to ResNet50's 3/4/6/3, expand ratios
around ResNet50's 0.25; its largest member is ResNet50 exactly.
"""

from __future__ import annotations

from edgessl.ops.specs import (
    BasicBlockSpec,
    BottleneckSpec,
    ConvSpec,
    PoolHeadSpec,
    conv_out,
    make_divisible,
)
from edgessl.spaces.base import SearchSpace


class ResNetFamily(SearchSpace):
    """The skeleton of the ResNet spaces; subclasses set ``stage_widths`` and ``block_type``
    (the spec class of their blocks)."""

    stage_widths: tuple[int, ...]
    block_type: type[BasicBlockSpec | BottleneckSpec]
    strides = (1, 2, 2, 2)
    stem = 64

    def _hw_in(self, resolution: int, stage: int, index: int) -> int:
        hw = conv_out(conv_out(resolution, 7, 2), 3, 2)
        for i in range(stage):
            hw = conv_out(hw, 3, self.strides[i])
        return hw if index == 0 else conv_out(hw, 3, self.strides[stage])

    def _pre_specs(self, resolution, width_mult):
        return (ConvSpec(3, make_divisible(self.stem * width_mult), resolution, 7, 2, "relu",
                         pool=True),)

    def _block_spec(self, resolution, width_mult, stage, index, kernel, expand):
        out_ch = make_divisible(self.stage_widths[stage] * width_mult)
        if index == 0:
            prev = self.stage_widths[stage - 1] if stage else self.stem
            in_ch, stride = make_divisible(prev * width_mult), self.strides[stage]
        else:
            in_ch, stride = out_ch, 1
        mid = make_divisible(round(out_ch * expand))
        return self.block_type(in_ch, mid, out_ch, self._hw_in(resolution, stage, index), stride)

    def _post_specs(self, resolution, width_mult):
        hw = self._hw_in(resolution, len(self.stage_widths) - 1, 1)
        return (PoolHeadSpec(make_divisible(self.stage_widths[-1] * width_mult), hw),)


class ResNetSpace(ResNetFamily):
    name = "resnet"
    resolutions = (128, 160, 192, 224)
    width_mults = (0.65, 0.8, 1.0)
    stage_depths = ((1, 2, 3), (2, 3, 4), (4, 5, 6), (1, 2, 3))
    kernels = (3,)
    expands = (0.15, 0.2, 0.25)
    stage_widths = (256, 512, 1024, 2048)
    block_type = BottleneckSpec
