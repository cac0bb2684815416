"""Command-line interface: ``edgessl COMMAND --help`` for each command."""

from __future__ import annotations

import importlib
import pkgutil

from edgessl.cli.app import app, main

_registered = False


def register_commands() -> None:
    """Import every command module in this package once; each registers its own commands."""
    global _registered
    if not _registered:
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
            if info.name not in ("app", "common"):
                importlib.import_module(f"edgessl.cli.{info.name}")
        _registered = True


__all__ = ["app", "main", "register_commands"]
