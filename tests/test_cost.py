"""Exact cost model: analytic MACs/params against fvcore and the built network; baselines."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from edgessl.baselines import BASELINES
from edgessl.cost.flops import build_reference_network, fvcore_macs, model_cost
from edgessl.ops.specs import LinearSpec
from edgessl.spaces import get_space, list_spaces

N_ARCHS = 40  # every resolution x width several times; -m slow checks 200


def _archs(name: str, n: int, seed: int):
    """n random archs covering every resolution and width multiplier of the space."""
    space = get_space(name)
    rng = np.random.default_rng(seed)
    archs = []
    for i in range(n):
        res = space.resolutions[i % len(space.resolutions)]
        width = space.width_mults[(i // len(space.resolutions)) % len(space.width_mults)]
        archs.append(space.sample(rng, resolution=res).replace(width_mult=width))
    return archs


@pytest.mark.parametrize("name,n", [*((s, N_ARCHS) for s in list_spaces()),
                                    *(pytest.param(s, 200, marks=pytest.mark.slow)
                                      for s in list_spaces())])
def test_analytic_cost_equals_fvcore_and_params(name, n):
    space = get_space(name)
    warnings.filterwarnings("ignore")
    worst = 0.0
    for arch in _archs(name, n, seed=11 if n == N_ARCHS else 12):
        macs, params = space.cost(arch)
        net, res = build_reference_network(arch)
        ref = fvcore_macs(net, res)
        worst = max(worst, abs(macs - ref) / ref)
        assert params == sum(p.numel() for p in net.parameters()), str(arch)
    assert worst <= 1e-3


@pytest.mark.parametrize("name", list_spaces())
def test_public_block_specs_make_the_layout_and_the_cost(name):
    """fixed_specs and block (what cost and latency code read) are the layout's pieces, and
    cached: the same spec object for the same arguments."""
    space = get_space(name)
    for arch in _archs(name, 30, seed=3):
        r, w = arch.resolution, arch.width_mult
        pre, post = space.fixed_specs(r, w)
        blocks = [space.block(r, w, i, j, b.kernel, b.expand)
                  for i, stage in enumerate(arch.stages) for j, b in enumerate(stage)]
        assert space.layout(arch).all() == [*pre, *blocks, *post]
        specs = [*pre, *blocks, *post, LinearSpec(post[-1].out_ch, 1000)]
        assert space.cost(arch) == tuple(map(sum, zip(*(s.cost() for s in specs), strict=True)))
        assert space.fixed_specs(r, w)[0] is pre
        i, j, b = 0, 0, arch.stages[0][0]
        assert space.block(r, w, i, j, b.kernel, b.expand) is blocks[0]


@pytest.mark.parametrize("name, published", [(b.name, b.published_mflops)
                                             for b in BASELINES.values()])
def test_baselines_match_published_mflops(name, published):
    cost = model_cost(name)
    assert abs(cost.mflops - published) / published <= 0.005
    net, res = build_reference_network(name)
    warnings.filterwarnings("ignore")
    assert abs(fvcore_macs(net, res) / 1e6 - cost.mflops) / cost.mflops <= 1e-3


def test_600_mflops_lies_inside_mobilenet_space_at_224():
    space = get_space("mobilenet")
    assert space.mflops(space.smallest(224)) < 600 < space.mflops(space.largest(224))


def test_resnet_space_largest_is_resnet50():
    space = get_space("resnet")
    assert space.cost(space.largest(224)) == (model_cost("resnet50").mflops * 1e6,
                                              model_cost("resnet50").params)


def test_resnet18_space_largest_is_resnet18_and_smallest_a_half_width_resnet10():
    space = get_space("resnet18")
    assert space.cost(space.largest(224)) == (model_cost("resnet18").mflops * 1e6,
                                              model_cost("resnet18").params)
    smallest = space.smallest(224)
    assert [len(s) for s in smallest.stages] == [1, 1, 1, 1] and smallest.width_mult == 0.5
