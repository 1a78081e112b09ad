"""README.md is the front door: short, opening with two lines that work, and every command in it real.

The expected commands, subcommands and options come from the CLI's own definition
(click introspection of ``recommender.cli.cli``) and the endpoints from the Flask app's
URL map, never from the README under test.
"""

from __future__ import annotations

import re
import shlex

import click
import pytest
from conftest import ROOT

from recommender.cli import cli

README = (ROOT / "README.md").read_text(encoding="utf-8")
LINES = README.splitlines()
MAX_LINES = 200

# The two opening lines. `.ci/run` runs the second one: keep them in step.
INSTALL_AND_SERVE = (
    "pip install -e '.[serve]' && recommender init && recommender load-sample && "
    "recommender train --publish && recommender serve --open"
)
INSTALL_AND_TEST = "pip install -e '.[test]' && python -m pytest -q"

HELP = {"--help", "-h"}


# --- reading the README --------------------------------------------------------------------


def code_blocks(text: str) -> list[list[str]]:
    """The lines of every fenced code block, continuation lines (``\\``) joined."""
    blocks, current, inside = [], [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if inside:
                blocks.append(current)
                current = []
            inside = not inside
            continue
        if inside:
            if current and current[-1].endswith("\\"):
                current[-1] = current[-1][:-1] + " " + line.strip()
            else:
                current.append(line)
    return blocks


def prose(text: str) -> str:
    """The README without its fenced code blocks."""
    return re.sub(r"^\s*```.*?^\s*```[^\n]*$", "", text, flags=re.S | re.M)


def shell_commands(line: str) -> list[list[str]]:
    """The simple commands of one shell line (split at ``&&``, ``||``, ``;`` and pipes), comments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands, current = [], []
    for token in lexer:
        if token and set(token) <= set(";&|"):
            commands.append(current)
            current = []
        else:
            current.append(token)
    commands.append(current)
    return [c for c in commands if c]


def inline_commands(text: str) -> list[list[str]]:
    """Every inline code span of the prose and tables that starts with ``recommender ``, as words.

    In tables ``a\\|b`` lists alternatives: ``consent show\\|history``.
    """
    spans = re.findall(r"`(recommender [^`]+)`", prose(text))
    return [span.replace("\\|", "|").split() for span in spans]


# --- checking a command against the CLI --------------------------------------------------------


def _options(command: click.Command) -> set[str]:
    return {flag for p in command.params if isinstance(p, click.Option) for flag in (*p.opts, *p.secondary_opts)}


def problems(words: list[str]) -> list[str]:
    """What is wrong with ``recommender WORDS...``: unknown (sub)commands and options the command lacks.

    A word may list alternatives (``show|history``); an option must then belong to every
    alternative. Options are taken from the words that follow the command path, stripped of
    ``[``/``]`` and of an ``=value``.
    """
    assert words[0] == "recommender"
    text = " ".join(words)
    candidates: list[click.Command] = [cli]
    rest = words[1:]
    while rest and all(isinstance(c, click.Group) for c in candidates):
        word = rest[0]
        if word.startswith("-"):
            break
        found = [c.commands.get(name) for c in candidates for name in word.split("|")]  # type: ignore[attr-defined]
        if any(f is None for f in found):
            return [f"`{text}`: no command {word!r} there"]
        candidates, rest = found, rest[1:]
    wrong = []
    for word in rest:
        for option in re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", word):
            if option in HELP:
                continue
            lacking = [c.name for c in candidates if option not in _options(c)]
            if lacking:
                wrong.append(f"`{text}`: {option} is not an option of {', '.join(lacking)}")
    return wrong


def test_the_checker_sees_mistakes():
    """The checks below are only as good as :func:`problems`: it must refuse what the CLI refuses."""
    assert problems("recommender train --publish --force".split()) == []
    assert problems("recommender consent show|history C0005".split()) == []
    assert problems("recommender keys revoke 3 --yes".split()) == []
    assert problems("recommender train --publsh".split())
    assert problems("recommender traine --publish".split())
    assert problems("recommender keys delete 3".split())
    assert problems("recommender import customers|products FILE --skip-erased".split())  # products lacks it
    assert problems("recommender campaign run --occasion all --date=2026-06-01 --bogus".split())
    assert shell_commands("echo n | recommender forget C0011 --yes  # note") == [
        ["echo", "n"],
        ["recommender", "forget", "C0011", "--yes"],
    ]


# --- the README ------------------------------------------------------------------------------


def test_the_readme_is_a_front_door():
    assert len(LINES) <= MAX_LINES, f"README.md has {len(LINES)} lines; move depth into docs/ (at most {MAX_LINES})"


def test_it_opens_with_the_two_lines_that_work():
    """The title, then a code block whose two lines install-and-serve and install-and-test."""
    lines = [line for line in LINES if line.strip()]
    assert lines[0].startswith("# "), "README.md starts with its title"
    assert re.fullmatch(r"```(bash|sh)?", lines[1].strip()), "the title is followed by a code block"
    assert lines[2] == INSTALL_AND_SERVE
    assert lines[3] == INSTALL_AND_TEST
    assert lines[4].strip() == "```", "the opening block holds exactly the two lines"


def test_every_command_in_a_code_block_is_real():
    found, wrong = 0, []
    for block in code_blocks(README):
        for line in block:
            for command in shell_commands(line):
                if command[0] == "recommender":
                    found += 1
                    wrong += problems(command)
    assert found, "the README's code blocks run no recommender command"
    assert wrong == []


def test_every_command_in_the_text_and_tables_is_real():
    commands = inline_commands(README)
    assert commands
    assert [p for words in commands for p in problems(words)] == []


def test_every_docs_link_exists():
    links = re.findall(r"\]\(((?:docs/)[^)#\s]+)(?:#[^)]*)?\)", README)
    assert links, "README.md links to no document under docs/"
    assert [link for link in links if not (ROOT / link).is_file()] == []


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory):
    from api import create_app
    from recommender import store

    db = tmp_path_factory.mktemp("readme") / "readme.db"
    store.connect(str(db), create=True).conn.close()
    app = create_app({"db": str(db), "model_dir": str(db.parent / "models")})
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/console", "/static")):
            continue
        path = re.sub(r"<[^>]+>", "{id}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.add(f"{method} {path}")
    return sorted(out)


def test_every_endpoint_is_in_the_api_table(endpoints):
    assert endpoints
    assert [e for e in endpoints if f"`{e}`" not in README] == []
