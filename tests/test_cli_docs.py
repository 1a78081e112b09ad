"""Every command and option is documented: in its --help and in README.md (a new one fails here until it is)."""

import re

import click
import pytest
from conftest import ROOT

from recommender.cli import cli

COMMON = {"--db", "--config", "--json", "--help", "-h"}


def walk(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        yield path, command
        if isinstance(command, click.Group):
            yield from walk(command, path)


COMMANDS = list(walk(cli))
README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_command_has_help_and_is_in_the_readme(path, command):
    assert (command.help or "").strip(), f"recommender {' '.join(path)} has no help text"
    words = r"\s+".join(re.escape(p) for p in path)
    if len(path) > 1 and isinstance(cli.commands[path[0]], click.Group):
        # a subcommand may be listed as `recommender keys create` or within `keys create|list|revoke`
        pattern = rf"recommender\s+{re.escape(path[0])}\b[^\n]*\b{re.escape(path[-1])}\b"
    else:
        pattern = rf"recommender\s+{words}\b"
    assert re.search(pattern, README), f"README.md does not mention `recommender {' '.join(path)}`"


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_option_has_help_and_is_in_the_readme(path, command):
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        flags = [f for f in param.opts if f.startswith("--")]
        if set(flags) & COMMON:
            continue
        assert (param.help or "").strip(), f"recommender {' '.join(path)} {flags[0]} has no help"
        assert any(f in README for f in flags), f"README.md does not mention {flags[0]} of recommender {' '.join(path)}"
