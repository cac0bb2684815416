"""The Typer app and the one place where errors become messages and exit codes.

Exit codes: 0 success, 2 bad input (one line naming the bad value), 1 runtime failure,
130 interrupted. Commands live in sibling modules and only parse, call the library, and print.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from edgessl.errors import EdgesslError

try:  # typer vendors click since 0.20; before, it used the click package
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - exercised with typer < 0.20
    from click import exceptions as click_exc

app = typer.Typer(
    name="edgessl",
    help="Find small, fast image backbones for edge devices without labels.\n\n"
         "Example (`edgessl COMMAND --help` for each command):\n\n"
         "```\nedgessl search --budget-mflops 600\n```",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
console = Console()
err_console = Console(stderr=True)
_registered = False


def register_commands() -> None:
    """Import every command module beside this one once; each registers its own commands."""
    global _registered
    if not _registered:
        modules = pkgutil.iter_modules([str(Path(__file__).parent)])
        for info in sorted(modules, key=lambda i: i.name):
            if info.name not in ("app", "common"):
                importlib.import_module(f"edgessl.cli.{info.name}")
        _registered = True


def print_json(obj: Any) -> None:
    """One JSON document (or line) on stdout, nothing else."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _error(text: str) -> None:
    """Print ``error: ...`` as exactly one line on stderr."""
    sys.stderr.write("error: " + " ".join(str(text).split()) + "\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app, map errors to one line and an exit code."""
    register_commands()
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="edgessl", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except EdgesslError as exc:
        _error(str(exc))
        code = exc.exit_code
    except click_exc.NoArgsIsHelpError:  # typer has already printed the help
        code = 2
    except click_exc.UsageError as exc:
        _error(exc.format_message())
        code = 2
    except typer.Exit as exc:
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        _error("interrupted")
        code = 130
    if argv is None:
        sys.exit(code)
    return code
