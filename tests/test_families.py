"""Handcrafted families: canonical names that round-trip, torchvision's networks, exact costs
(fvcore the reference), zero-initialised residual branches, and use wherever a baseline is."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import torchvision
from torch import nn
from torchvision.models import mobilenetv2, resnet

from edgessl.baselines import (
    FAMILIES,
    RESNET_BLOCKS,
    RESNET_EXPANSION,
    TORCHVISION_MEMBERS,
    MobileNetV2Member,
    ResNetMember,
    build_baseline,
    get_baseline,
    is_baseline,
    parse_member,
)
from edgessl.cost.flops import count_macs, fvcore_macs, model_cost
from edgessl.errors import BadInput
from edgessl.ops.init import zero_init_residuals
from edgessl.study import family_table

PUBLISHED = {"resnet18": 1814.07, "resnet34": 3663.76, "resnet50": 4089.18,
             "mobilenet_v2": 300.77}  # torchvision's model docs, GFLOPS x 1000


def _light(member) -> nn.Module:
    """The member's full network, built without the cost of initialising its weights."""
    with torch.device("meta"):
        net = member.build(num_classes=1000)
    net = net.to_empty(device="cpu")
    with torch.no_grad():
        for t in [*net.parameters(), *net.buffers()]:
            t.zero_()
    return net.eval()


def _sample(n_per_family: int, seed: int = 0) -> list:
    """Members drawn from every family, the cheapest and dearest of each among them."""
    rng = np.random.default_rng(seed)
    out = []
    for name in ("resnet-basic", "resnet-bottleneck", "mbv2"):
        members = sorted(FAMILIES[name].members(), key=lambda m: m.analytic_cost(224)[0])
        picks = {0, len(members) - 1, *rng.choice(len(members), n_per_family - 2,
                                                  replace=False).tolist()}
        out += [members[i] for i in sorted(picks)]
    return out


def test_family_sizes_and_every_name_round_trips():
    sizes = {r["family"]: r["members"] for r in family_table()}
    assert sizes == {"resnet": 409, "resnet-basic": 82, "resnet-bottleneck": 327, "mbv2": 1215}
    resnets = FAMILIES["resnet"].members()
    assert resnets == FAMILIES["resnet-basic"].members() + FAMILIES["resnet-bottleneck"].members()
    names = [m.name for f in ("resnet", "mbv2") for m in FAMILIES[f].members()]
    assert len(set(names)) == len(names)
    for name in names:
        assert parse_member(name).name == name and get_baseline(name).name == name
        assert get_baseline(f"baseline:{name}").name == name and is_baseline(name)
    grid = {m.depths for m in FAMILIES["resnet-basic"].members()}
    assert {(a, b, c, d) for a in (2, 3, 4) for b in (2, 3, 4) for c in (2, 3, 4)
            for d in (2, 3, 4)} <= grid
    assert {m.width_mult for m in FAMILIES["mbv2"].members()} == {1.0, 1.5, 2.0, 2.5, 3.0}


def test_short_spellings_give_the_canonical_name():
    assert get_baseline("resnet-basic-d2.2.2.2").name == "resnet-basic-d2.2.2.2-g1-w64"
    assert get_baseline("mbv2-w1-n1.2.3.4.3.3.1").name == "mbv2-w1.0-n1.2.3.4.3.3.1"
    assert get_baseline("resnet-bottleneck-d3.4.23.3-g1-w64") == ResNetMember(
        "bottleneck", (3, 4, 23, 3))


@pytest.mark.parametrize("name, why", [
    ("resnet-basic-d2.2.2.2-g32-w4", "BasicBlock supports only groups 1"),
    ("resnet-basic-d2.2.2", "four stages"),
    ("resnet-wide-d2.2.2.2", "allowed: basic, bottleneck"),
    ("resnet-basic-d2.0.2.2", "four stages of 1..64"),
    ("mbv2-w9.0-n1.2.3.4.3.3.1", "must lie in 0.1..4"),
    ("mbv2-w1.0-n1.2.3", "7 rows"),
    ("resnet-basic-dx.2.2.2", "family members are named resnet-"),
    ("mbv2-w1.0-n1.2.3.4.3.3.1.", "not integers joined by dots"),
])
def test_bad_member_names_say_why(name, why):
    with pytest.raises(BadInput, match=why):
        get_baseline(name)
    assert not is_baseline(name)
    with pytest.raises(BadInput, match="unknown baseline 'resnet77'"):
        get_baseline("resnet77")


@pytest.mark.parametrize("torchvision_name, member", list(TORCHVISION_MEMBERS.items()))
def test_torchvision_networks_are_family_members(torchvision_name, member):
    """Same modules, same parameter shapes, same costs; published MFLOPs within 0.5%."""
    with torch.device("meta"):
        ours = get_baseline(member).build(num_classes=1000)
        theirs = getattr(torchvision.models, torchvision_name)()
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == \
        [(k, v.shape) for k, v in theirs.state_dict().items()]
    cost = model_cost(member)
    assert cost.params == sum(p.numel() for p in theirs.parameters())
    if torchvision_name in PUBLISHED:
        published = PUBLISHED[torchvision_name]
        assert abs(cost.mflops - published) / published <= 0.005
    if torchvision_name in ("resnet18", "resnet50", "mobilenet_v2"):  # registered baselines
        assert model_cost(torchvision_name).mflops == pytest.approx(cost.mflops, abs=1e-9)


def test_member_costs_equal_fvcore_and_the_built_network():
    """54 members over the three grids: analytic MACs == fvcore's conv + linear count at 224
    and == forward hooks at an odd resolution; params == the built network's."""
    warnings.filterwarnings("ignore")
    members = _sample(18)
    assert len(members) >= 50
    for m in members:
        net = _light(m)
        macs, params = m.analytic_cost(224)
        assert model_cost(m.name).mflops * 1e6 == pytest.approx(macs, abs=0.5)
        assert fvcore_macs(net, 224) == macs, m.name
        assert params == sum(p.numel() for p in net.parameters()), m.name
        assert count_macs(net, 97) == m.analytic_cost(97)[0], m.name
        head = net.fc if hasattr(net, "fc") else net.classifier[-1]
        assert head.in_features == m.feature_dim, m.name


def _residual_blocks(net: nn.Module) -> int:
    return sum(1 for b in net.modules() if isinstance(b, (resnet.BasicBlock, resnet.Bottleneck))
               or (isinstance(b, mobilenetv2.InvertedResidual) and b.use_res_connect))


@pytest.mark.parametrize("name", ["resnet-basic-d2.3.4.2-g1-w64",
                                  "resnet-bottleneck-d4.2.3.2-g32-w4", "mbv2-w2.5-n1.4.2.3.4.2.1"])
def test_zero_init_covers_family_members(name):
    net = build_baseline(name)
    expected = _residual_blocks(net)
    assert expected > 0 and zero_init_residuals(net) == expected
    last = {resnet.BasicBlock: lambda b: b.bn2, resnet.Bottleneck: lambda b: b.bn3,
            mobilenetv2.InvertedResidual: lambda b: b.conv[-1]}
    for b in net.modules():
        if type(b) in last and (not isinstance(b, mobilenetv2.InvertedResidual)
                                or b.use_res_connect):
            assert bool((last[type(b)](b).weight == 0).all())


def test_members_work_where_baselines_do(cli, tmp_path):
    """cost (the CLI), a standalone backbone with the right feature width, and a checkpoint
    that names the member."""
    from edgessl.checkpoint import load_network, save_model
    from edgessl.models import build_model

    name = "mbv2-w1.5-n1.2.2.2.2.2.1"
    r = cli("cost", name, "--json")
    assert r.code == 0, r.err
    row = json.loads(r.out)
    assert row["name"] == name and row["mflops"] * 1e6 == pytest.approx(
        MobileNetV2Member(1.5, (1, 2, 2, 2, 2, 2, 1)).analytic_cost(224)[0], abs=1)
    net = build_model(name).eval()
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, get_baseline(name).feature_dim)
    save_model(tmp_path / "m.ckpt", name, net)
    back = load_network(tmp_path / "m.ckpt")
    assert back.ref == name and back.name == name
    bad = cli("cost", "resnet-basic-d2.2.2")
    assert bad.code == 2 and len(bad.err.strip().splitlines()) == 1


def test_resnet_blocks_name_torchvision_classes_with_their_expansion():
    """baselines.py names torchvision's blocks without importing torchvision (a start-up
    cost); the names and expansions must be torchvision's own."""
    assert set(RESNET_BLOCKS) == set(RESNET_EXPANSION)
    for kind, cls in RESNET_BLOCKS.items():
        assert getattr(resnet, cls).expansion == RESNET_EXPANSION[kind], kind
