"""Registry of search spaces: ``get_space(name)``; a new space is one module plus one line."""

from __future__ import annotations

from edgessl.arch import register_space
from edgessl.errors import BadInput
from edgessl.spaces.base import Layout, SearchSpace
from edgessl.spaces.mobilenet import MobileNetSpace
from edgessl.spaces.resnet import ResNetSpace
from edgessl.spaces.resnet18 import ResNet18Space

SPACES: dict[str, SearchSpace] = {
    s.name: s for s in (MobileNetSpace(), ResNetSpace(), ResNet18Space())}
for _space in SPACES.values():
    register_space(_space.name, _space.check)  # every Arch of it is checked when made


def get_space(name: str) -> SearchSpace:
    """The space called ``name``; unknown names are bad input listing the known ones."""
    try:
        return SPACES[name]
    except KeyError:
        raise BadInput(f"unknown space {name!r}; known: {', '.join(SPACES)}") from None


def list_spaces() -> list[str]:
    return list(SPACES)


__all__ = ["SearchSpace", "Layout", "get_space", "list_spaces", "SPACES"]
