"""Parse a command line against the kit's real tasks as ``invoke`` itself does, without running anything.

``parse(["server-up", "dev"])`` loads ``tasks.py`` (as invoke's loader does: a plain ``Collection`` from the
module), parses the core flags, then the tasks, with invoke's own ``Parser`` and ``Program``. A refused line raises
invoke's ``Exit`` (the kit's exit 2) or ``ParseError`` (invoke's own, e.g. an unknown task).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

from invoke.collection import Collection
from invoke.parser import Parser
from invoke.program import Program

from harness import REPO_ROOT


@cache
def tasks_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kit_tasks_under_test", REPO_ROOT / "tasks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def collection() -> Collection:
    return Collection.from_module(tasks_module())


@dataclass
class Parsed:
    task: str
    kwargs: dict[str, Any]


def parse(argv: list[str]) -> list[Parsed]:
    """The tasks ``invoke ARGV...`` would run, with their arguments (core flags parsed and dropped)."""
    program = Program()
    core = Parser(initial=program.initial_context, ignore_unknown=True).parse_argv(argv)
    result = Parser(initial=program.initial_context, contexts=collection().to_contexts()).parse_argv(core.unparsed)
    return [Parsed(context.name, dict(context.as_kwargs)) for context in result[1:]]


#: A just recipe line that hands everything to one invoke task: `{{quote(invoke)}} TASK [fixed words] "$@"`.
_RECIPE = re.compile(r'^([a-z][a-z0-9-]*) \*args:\n    \{\{quote\(invoke\)\}\} ([^\n"]+) "\$@"$', re.MULTILINE)


def just_recipes() -> dict[str, list[str]]:
    """Each pass-through recipe of the justfile and the invoke words it stands for (``test`` -> ``gate``)."""
    text = (REPO_ROOT / "justfile").read_text()
    return {name: words.split() for name, words in _RECIPE.findall(text)}
