"""Arch: canonical JSON round-trip, hashing, validation messages, seeded variation."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import edgessl.arch
from edgessl.arch import Arch, Block, register_space
from edgessl.errors import BadInput
from edgessl.spaces import get_space, list_spaces


@pytest.mark.parametrize("name", list_spaces())
def test_json_round_trip_is_exact(name):
    space = get_space(name)
    rng = np.random.default_rng(0)
    for _ in range(50):
        arch = space.sample(rng)
        text = arch.to_json()
        again = Arch.from_json(text)
        assert again == arch and hash(again) == hash(arch)
        assert again.to_json() == text
        assert space.decode(space.encode(arch)) == arch


def test_arch_is_frozen_and_hashable():
    arch = get_space("mobilenet").largest(224)
    with pytest.raises(AttributeError):
        arch.resolution = 128  # type: ignore[misc]
    assert len({arch, Arch.from_json(arch.to_json())}) == 1


def _base() -> dict:
    return get_space("mobilenet").smallest(224).to_dict()


@pytest.mark.parametrize("mutate, fragment", [
    (lambda d: d.update(colour=1), "unknown field 'colour'"),
    (lambda d: d["stages"][0][0].update(kernel=4), "kernel 4 not allowed; allowed: 3, 5, 7"),
    (lambda d: d["stages"][1].extend([d["stages"][1][0]] * 7), "depth of stages[1] is 9"),
    (lambda d: d.update(resolution=100), "resolution 100 not in space 'mobilenet'"),
    (lambda d: d.update(format="edgessl-arch/9"), "format 'edgessl-arch/9' is not supported"),
    (lambda d: d.update(width_mult=0.5), "width_mult 0.5 not in space"),
    (lambda d: d["stages"][2][0].update(expand=5), "expand 5 not allowed; allowed: 3, 4, 6"),
    (lambda d: d.update(space="vit"), "unknown space 'vit'"),
    (lambda d: d.pop("stages"), "missing field 'stages'"),
    (lambda d: d["stages"][0][0].pop("expand"), "field 'expand' unexpected or missing"),
])
def test_invalid_arch_names_field_and_allowed_values(mutate, fragment):
    data = _base()
    mutate(data)
    with pytest.raises(BadInput, match=None) as info:
        Arch.from_json(json.dumps(data))
    assert fragment in str(info.value)


def test_not_json_is_refused():
    with pytest.raises(BadInput, match="not valid JSON"):
        Arch.from_json("{nope")


def test_direct_construction_is_validated():
    with pytest.raises(BadInput, match="kernel 9"):
        Arch("mobilenet", 224, 1.0, ((Block(9, 3),) * 2,) * 5)


def test_arch_validates_with_the_check_its_space_registered(monkeypatch):
    monkeypatch.setattr(edgessl.arch, "_CHECKS", dict(edgessl.arch._CHECKS))
    seen = []

    def check(arch: Arch) -> None:
        seen.append(arch.resolution)
        if arch.resolution != 32:
            raise BadInput(f"arch: resolution {arch.resolution} not in space 'toy'; allowed: 32")

    with pytest.raises(BadInput, match="unknown space 'toy'; known: mobilenet, resnet"):
        Arch("toy", 32, 1.0, ())
    register_space("toy", check)
    assert Arch.from_json(json.dumps({"format": "edgessl-arch/1", "space": "toy",
                                      "resolution": 32, "width_mult": 1, "stages": []})).space
    with pytest.raises(BadInput, match="resolution 64 not in space 'toy'"):
        Arch("toy", 32, 1.0, ()).replace(resolution=64)
    assert seen == [32, 32, 64]


def test_arch_module_stands_without_the_spaces():
    """edgessl.arch imports no space; an Arch is refused, naming the fix, until the spaces
    are imported (which registers their checks)."""
    code = (
        "import sys\n"
        "from edgessl.arch import Arch, Block\n"
        "from edgessl.errors import BadInput\n"
        "assert not [m for m in sys.modules if m.startswith('edgessl.spaces')]\n"
        "stages = ((Block(3, 3),) * 2,) * 5\n"
        "try:\n"
        "    Arch('mobilenet', 224, 1.0, stages)\n"
        "except BadInput as exc:\n"
        "    print(exc)\n"
        "import edgessl.spaces\n"
        "print(Arch('mobilenet', 224, 1.0, stages))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["unknown space 'mobilenet'; known: none registered (import edgessl.spaces)",
                   "mobilenet@224w1.0:" + "|".join(["k3e3,k3e3"] * 5)]


@pytest.mark.parametrize("name", list_spaces())
def test_seeded_sampling_mutation_crossover(name):
    space = get_space(name)
    a = [space.sample(np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(1)
    x, y = space.sample(rng, resolution=160), space.sample(rng, resolution=160)
    m = space.mutate(x, np.random.default_rng(3), prob=0.5)
    assert m != x and m.resolution == 160
    c = space.crossover(x, y, np.random.default_rng(4))
    gx, gy, gc = space.encode(x), space.encode(y), space.encode(c)
    assert np.all((gc == gx) | (gc == gy))
    assert space.mutate(x, np.random.default_rng(3), prob=0.5) == m


def test_largest_and_smallest_bound_every_sample():
    space = get_space("mobilenet")
    rng = np.random.default_rng(5)
    lo, hi = space.mflops(space.smallest(224)), space.mflops(space.largest(224))
    for _ in range(200):
        assert lo <= space.mflops(space.sample(rng, resolution=224)) <= hi
