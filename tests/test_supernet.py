"""Supernet: the active sub-network equals its extracted standalone copy, built of plain layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgessl.errors import BadInput
from edgessl.spaces import get_space, list_spaces
from edgessl.supernet import Supernet

PLAIN = (nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.ReLU, nn.Hardswish, nn.Hardsigmoid,
         nn.MaxPool2d, nn.Identity, nn.Sequential)


def _randomise_bn(net: nn.Module, gen: torch.Generator) -> None:
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)


def _eval_supernet(space, bn_seed: int):
    """A seeded supernet in eval mode with random (non-trivial) BatchNorm statistics."""
    torch.manual_seed(0)
    net = Supernet(space).eval()
    _randomise_bn(net, torch.Generator().manual_seed(bn_seed))
    return net


@pytest.mark.parametrize("name", list_spaces())
def test_extracted_subnet_equals_active_supernet(name):
    space = get_space(name)
    supernet = _eval_supernet(space, bn_seed=1)
    rng = np.random.default_rng(2)
    x = torch.randn(2, 3, 48, 48)
    worst = 0.0
    for i in range(100):  # every resolution x width pairing, 100 random block settings
        res = space.resolutions[i % len(space.resolutions)]
        arch = space.sample(rng, resolution=res).replace(
            width_mult=space.width_mults[(i // 4) % len(space.width_mults)])
        supernet.set_active(arch)
        with torch.no_grad():
            y = supernet(x)
            sub = supernet.extract(arch).eval()
            z = sub(x)
        assert y.shape == (2, space.feature_dim(arch))
        worst = max(worst, (y - z).abs().max().item())
        if i % 40 == 0:
            assert all(isinstance(m, PLAIN) or type(m).__module__.startswith("edgessl.ops.layers")
                       for m in sub.modules() if m is not sub)
            assert sum(p.numel() for p in sub.parameters()) == space.cost(arch, 0)[1]
    assert worst <= 1e-5


def test_extracted_layers_hold_only_plain_torch_parameters():
    space = get_space("mobilenet")
    sub = Supernet(space).extract(space.smallest(128))
    kinds = {type(m) for m in sub.modules()}
    leaf = {k for k in kinds if not list(k.__mro__[1:2]) or k.__module__.startswith("torch")}
    assert leaf <= set(PLAIN) | {nn.Module}
    assert not any("Elastic" in type(m).__name__ for m in sub.modules())


def test_sharing_smaller_subnets_use_leading_weights():
    space = get_space("mobilenet")
    net = Supernet(space)
    small, large = net.extract(space.smallest(224)), net.extract(space.largest(224))
    w_small = small.features[2].depthwise[0].weight  # first elastic block, kernel 3
    w_large = large.features[2].depthwise[0].weight  # same block, kernel 7
    assert torch.equal(w_small, w_large[: w_small.shape[0], :, 2:5, 2:5])


def test_wrong_space_arch_is_refused():
    net = Supernet(get_space("resnet"))
    with pytest.raises(BadInput, match="space 'mobilenet'"):
        net.set_active(get_space("mobilenet").smallest(128))


def test_supernet_trains_through_active_subnet():
    space = get_space("resnet")
    net = Supernet(space).train()
    net.set_active(space.smallest(128))
    loss = net(torch.randn(4, 3, 32, 32)).pow(2).mean()
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    last = net.stages[2][-1].conv1.conv.weight
    assert last.grad is None or not last.grad.abs().sum()  # block beyond active depth unused


@pytest.mark.parametrize("name", list_spaces())
def test_sorting_channels_keeps_largest_and_puts_strongest_first(name):
    space = get_space(name)
    net = _eval_supernet(space, bn_seed=2)
    x = torch.randn(2, 3, 40, 40)
    largest = space.largest(128)
    net.set_active(largest)
    with torch.no_grad():
        before = net(x)
        net.sort_channels()
        net.set_active(largest)
        after = net(x)
    assert (before - after).abs().max().item() <= 1e-4 * before.abs().max().item()
    block = net.stages[1][1]
    reader = getattr(block, {"mobilenet": "project", "resnet": "conv3",
                             "resnet18": "conv2"}[name]).conv.weight
    norms = reader.abs().sum((0, 2, 3))
    assert torch.all(norms[:-1] >= norms[1:])  # importance is now non-increasing
