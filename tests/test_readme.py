"""Every command in the README runs as written: each ``edgessl`` line of its bash blocks names
a real command and parses with that command's options (click parses it exactly as the shell
would hand it over), and the cheap ones are run for real."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main
from typer.core import TyperGroup

try:  # typer vendors click since 0.20
    from typer._click.exceptions import UsageError
except ImportError:
    from click.exceptions import UsageError

from edgessl.cli import app, register_commands

README = Path(__file__).resolve().parent.parent / "README.md"
CHEAP = ("edgessl space show", "edgessl cost mobilenet_v2")  # run for real (seconds)


def readme_commands(text: str) -> list[str]:
    """The edgessl command lines of the README's bash blocks (continuations joined, comments
    the pip prefix and environment assignments dropped, ``torchrun ... -m edgessl`` reduced to
    the edgessl part)."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = " ".join(line.split(" #")[0].split())
            line = line.split("&& ")[-1]
            line = re.sub(r"^(\w+=\S*\s+)+", "", line)  # VAR=value prefixes (OMP_NUM_THREADS=1)
            if " -m edgessl " in line:
                line = "edgessl " + line.split(" -m edgessl ", 1)[1]
            if line.startswith("edgessl "):
                lines.append(line)
    return lines


def test_the_readme_is_a_guide_of_at_most_about_250_lines():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    first = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1).strip().splitlines()
    assert first == ["pip install -e . && edgessl search --budget-mflops 600",
                     "pip install -e '.[dev]' && pytest"]
    assert "{{" not in text  # no placeholder left


def test_extraction_finds_what_a_reader_sees():
    got = readme_commands("```bash\nedgessl cost x  # note\ntorchrun --n 2 -m edgessl train "
                          "--data D \\\n    --out R\npip install -e . && edgessl search\n"
                          "OMP_NUM_THREADS=1 edgessl eval M\n```\n")
    assert got == ["edgessl cost x", "edgessl train --data D --out R", "edgessl search",
                   "edgessl eval M"]


def parse_error(line: str) -> str | None:
    """Why click would refuse ``line`` (an unknown command or option, a bad value), or None."""
    register_commands()
    group = typer.main.get_command(app)
    words = shlex.split(line)[1:]
    try:
        ctx = group.make_context("edgessl", list(words), resilient_parsing=True)
        name, cmd, rest = group.resolve_command(ctx, words)
        if cmd is None:
            return f"no such command {words[0]!r}"
        while isinstance(cmd, TyperGroup):  # sub-commands (edgessl space show)
            sub = cmd.make_context(name, list(rest), resilient_parsing=True, parent=ctx)
            name, cmd, rest = cmd.resolve_command(sub, rest)
        cmd.make_context(name, list(rest))
    except UsageError as e:
        return e.format_message()
    return None


def test_parse_error_catches_what_the_shell_would_hit():
    assert parse_error("edgessl train --out R --epochs 2") is None
    assert "--no-such" in parse_error("edgessl train --no-such 1")
    assert "nope" in parse_error("edgessl nope")
    assert parse_error("edgessl space show --space mobilenet") is None
    assert parse_error("edgessl train --epochs five") is not None


@pytest.mark.parametrize("line", readme_commands(README.read_text()))
def test_every_readme_command_parses(line):
    assert parse_error(line) is None, line


@pytest.mark.parametrize("line", [x for x in readme_commands(README.read_text())
                                  if x.startswith(CHEAP)])
def test_cheap_readme_commands_run(cli, line):
    r = cli(*shlex.split(line)[1:])
    assert r.code == 0, r
    assert r.out.strip()
