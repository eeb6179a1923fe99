"""Every `invoke ...` and `just ...` command the docs show parses against the real tasks (no server needed).

The docs: README.md, docs/*.md, julia/README.md and prefect.yaml's comments. A command that the kit would refuse
(an unknown task or flag, a bare word a task does not take, an environment that is not declared) turns the gate
red. Placeholders in syntax lines (``ENV``, ``FILE``, ``[--param k=v ...]``) are filled with sample values first.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from invoke.exceptions import Exit, ParseError

from cli_parse import just_recipes, parse
from harness import REPO_ROOT
from prefect_julia.kit.environment.environments import declared_environments

ENVIRONMENTS = declared_environments(REPO_ROOT)

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "julia" / "README.md"]
#: A command: `invoke` or `just` (or .venv/bin/...), its words one space apart, up to the end of its code, two
#: spaces (a drawing's columns), a comment, a pipe, a shell operator, a parenthesis or a non-ASCII character.
_WORD = "[" + re.escape("".join(c for c in map(chr, range(33, 127)) if c not in "`;&|()#\"'")) + "]+"
COMMAND = re.compile(rf"(?<![\w/-])(?:\.venv/bin/)?(invoke|just)((?: {_WORD}| \"[^\"`]*\")*)")
FENCE = re.compile(r"^\s*```")
SPAN = re.compile(r"`([^`\n]+)`")
#: Placeholders of syntax lines and the sample value each stands for.
SAMPLES = {"ENV": "dev", "FILE": "backup.db", "F": "backup.db", "N": "3", "S": "60", "DEPLOYMENT": "daily",
           "NAME": "daily", "k=v": "rundate=2026-11-21", "PORT": "4309"}  # fmt: skip


def _code(text: str) -> list[tuple[int, str]]:
    """(line number, code) of a markdown text: the lines of fenced blocks and every inline code span."""
    code: list[tuple[int, str]] = []
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif fenced:
            code.append((number, line))
        else:
            code.extend((number, span) for span in SPAN.findall(line))
    return code


def _sources() -> list[tuple[Path, list[tuple[int, str]]]]:
    found = [(path, _code(path.read_text(encoding="utf-8"))) for path in DOCS]
    yaml = REPO_ROOT / "prefect.yaml"
    lines = enumerate(yaml.read_text().splitlines(), 1)
    return [*found, (yaml, [(number, line.split("#", 1)[1]) for number, line in lines if "#" in line])]


def _commands() -> list[tuple[str, str, list[str]]]:
    """(where, the command as shown, its words after placeholders are filled) for every command in the docs."""
    found: list[tuple[str, str, list[str]]] = []
    for path, code in _sources():
        for number, line in code:
            for match in COMMAND.finditer(line):
                shown = match.group(0).strip()
                words = _fill(match.group(2))
                if words is None:
                    continue
                where = f"{path.relative_to(REPO_ROOT)}:{number}"
                found.append((where, shown, [match.group(1), *words]))
    return found


def _fill(rest: str) -> list[str] | None:
    """The words of a shown command with sample values for placeholders; None: prose, not a command."""
    text = rest.replace("[", " ").replace("]", " ").replace("...", " ")
    try:
        words = shlex.split(text)
    except ValueError:
        return None
    if words and not re.fullmatch(r"[a-z][a-z0-9-]*|--?[a-z].*", words[0]):
        return None  # not a command line, e.g. "invoke := ..." in a justfile excerpt
    filled = []
    for word in words:
        flag, _, value = word.partition("=")
        if value in SAMPLES and flag.startswith("-"):
            word = f"{flag}={SAMPLES[value]}"
        filled.append(SAMPLES.get(word, word))
    return filled


#: Commands the docs show as refused (what the kit answers is part of the docs): each must be refused.
REFUSED = {"invoke deploy dev --env prod", "invoke serve-up", "invoke server-up staging"}
COMMANDS = [command for command in _commands() if command[1] not in REFUSED]


def test_the_docs_show_commands() -> None:
    shown = {" ".join(words[:2]) for _, _, words in COMMANDS}
    assert len(COMMANDS) >= 60, len(COMMANDS)
    assert {"invoke server-up", "invoke deploy", "just deploy", "invoke run", "just test"} <= shown


@pytest.mark.parametrize(("where", "shown", "words"), COMMANDS, ids=[f"{w} {s}" for w, s, _ in COMMANDS])
def test_every_documented_command_parses(where: str, shown: str, words: list[str]) -> None:
    program, *argv = words
    if program == "just":
        recipes = just_recipes()
        if not argv:
            return  # `just` alone lists the recipes
        assert argv[0] in recipes, f"{where}: `{shown}`: the justfile has no pass-through recipe {argv[0]!r}"
        argv = [*recipes[argv[0]], *argv[1:]]
    try:
        parsed = parse(argv)
    except (Exit, ParseError) as refused:
        pytest.fail(f"{where}: `{shown}` is refused: {getattr(refused, 'message', None) or refused}")
    for task in parsed:
        env = task.kwargs.get("env", "")
        assert env in ("", *ENVIRONMENTS), f"{where}: `{shown}`: {env!r} is not an environment"


def test_the_forms_the_docs_show_as_refused_are_refused() -> None:
    """Also the check itself: a refused form fails it (as the docs test would for a command shown as working)."""
    shown = {command for _, command, _ in _commands()}
    assert shown & REFUSED, "the docs no longer show a refused form: drop REFUSED or the test"
    for command in REFUSED | {"invoke gate dev"}:
        refused = False
        try:
            parsed = parse(command.split()[1:])
            refused = any(p.kwargs.get("env", "") not in ("", *ENVIRONMENTS) for p in parsed)
        except (Exit, ParseError):
            refused = True
        assert refused, f"`{command}` is accepted, but the docs say it is refused"
