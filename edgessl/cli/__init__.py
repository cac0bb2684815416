"""Command-line interface: ``edgessl COMMAND --help`` for each command."""

from __future__ import annotations

from edgessl.cli.app import app, main, register_commands

__all__ = ["app", "main", "register_commands"]
