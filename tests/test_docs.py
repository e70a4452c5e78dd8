"""Docs enforced by tests: every CLI command has help text and a README section (a heading naming `it`)."""
from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from extractor.cli import main
from conftest import ROOT

COMMANDS = sorted(main.commands)
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_starts_with_demo_and_test() -> None:
    first_section = README.split("\n## Commands", 1)[0]
    assert "make demo" in first_section and "make test" in first_section


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name: str) -> None:
    cmd = main.commands[name]
    assert (cmd.help or "").strip(), f"`{name}` has no docstring/help"
    r = CliRunner().invoke(main, [name, "--help"])
    assert r.exit_code == 0 and "Usage:" in r.output
    for p in cmd.params:
        if isinstance(p, click.Option) and not p.hidden:
            assert (p.help or "").strip(), f"`{name} {p.opts[0]}` has no help text"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_a_readme_section(name: str) -> None:
    heading = rf"^#{{2,4}} .*`{re.escape(name)}[` ]"
    assert re.search(heading, README, re.M), f"README.md has no section heading naming `{name}`"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_database_command_takes_db(name: str) -> None:
    opts = {o for p in main.commands[name].params for o in getattr(p, "opts", [])}
    assert "--db" in opts
