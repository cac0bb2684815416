"""MobileNetV3-like space of Once-for-All: 5 elastic stages of inverted residual blocks.

Stem conv3x3/2 (h-swish), a fixed first block (depthwise 3x3, expand 1), stages of widths
24/40/80/112/160 x width multiplier with strides 2/2/2/1/2, ReLU in the first two stages and
h-swish after, squeeze-excite in stages 2, 4, 5; head: 1x1 expand to 960, pool, 1x1 mix to 1280.
"""

from __future__ import annotations

from edgessl.ops.specs import ConvSpec, MBConvSpec, MBHeadSpec, conv_out, make_divisible
from edgessl.spaces.base import SearchSpace

STAGE_WIDTHS = (24, 40, 80, 112, 160)
STRIDES = (2, 2, 2, 1, 2)
ACTS = ("relu", "relu", "hswish", "hswish", "hswish")
SE = (False, True, False, True, True)
STEM, FIRST, FINAL_EXPAND, LAST = 16, 16, 960, 1280


class MobileNetSpace(SearchSpace):
    name = "mobilenet"
    resolutions = (128, 160, 192, 224)
    width_mults = (1.0, 1.2)
    stage_depths = ((2, 3, 4),) * 5
    kernels = (3, 5, 7)
    expands = (3, 4, 6)

    def _hw_in(self, resolution: int, stage: int, index: int) -> int:
        hw = conv_out(resolution, 3, 2)
        for i in range(stage):
            hw = conv_out(hw, 3, STRIDES[i])
        return hw if index == 0 else conv_out(hw, 3, STRIDES[stage])

    def _pre_specs(self, resolution, width_mult):
        stem = make_divisible(STEM * width_mult)
        hw = conv_out(resolution, 3, 2)
        first = make_divisible(FIRST * width_mult)
        return (ConvSpec(3, stem, resolution, 3, 2, "hswish"),
                MBConvSpec(stem, stem, first, hw, 3, 1, 0, "relu"))

    def _block_spec(self, resolution, width_mult, stage, index, kernel, expand):
        out_ch = make_divisible(STAGE_WIDTHS[stage] * width_mult)
        if index == 0:
            in_ch = make_divisible((STAGE_WIDTHS[stage - 1] if stage else FIRST) * width_mult)
            stride = STRIDES[stage]
        else:
            in_ch, stride = out_ch, 1
        mid = make_divisible(round(in_ch * expand))
        se = make_divisible(mid // 4) if SE[stage] else 0
        return MBConvSpec(in_ch, mid, out_ch, self._hw_in(resolution, stage, index), kernel,
                          stride, se, ACTS[stage])

    def _post_specs(self, resolution, width_mult):
        hw = self._hw_in(resolution, len(STAGE_WIDTHS) - 1, 1)
        return (MBHeadSpec(make_divisible(STAGE_WIDTHS[-1] * width_mult),
                           make_divisible(FINAL_EXPAND * width_mult),
                           make_divisible(LAST * width_mult), hw, "hswish"),)
