"""ResNet18-like space of basic blocks: the family around the network edge users pick by habit.

The ResNet skeleton (stem conv7x7/2 + max-pool, strides 1/2/2/2) with stage widths
64/128/256/512 x width multiplier, one or two basic blocks per stage, and the width of each
block's first 3x3 conv (mid = out x expand). The largest member is ResNet18 exactly; the
smallest is a half-width ResNet10. Dense 3x3 convolutions run several times more MACs per
second than depthwise ones on CPUs (BENCHMARKS.md), which is why this space trains fastest there.
"""

from __future__ import annotations

from edgessl.ops.specs import BasicBlockSpec
from edgessl.spaces.resnet import ResNetFamily


class ResNet18Space(ResNetFamily):
    name = "resnet18"
    resolutions = (128, 160, 192, 224)
    width_mults = (0.5, 0.75, 1.0)
    stage_depths = ((1, 2),) * 4
    kernels = (3,)
    expands = (0.5, 0.75, 1.0)
    stage_widths = (64, 128, 256, 512)
    block_type = BasicBlockSpec
