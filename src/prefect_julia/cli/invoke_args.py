"""Optional positional arguments for invoke tasks (``invoke server-up`` and ``invoke server-up dev``).

invoke treats every positional argument as required. ``allow_optional_positionals()`` lets a positional
argument whose task default is ``None`` be left out: it then arrives as ``""`` and the task picks its default.
Call it from ``tasks.py``; invoke loads that module before it parses the task arguments.
"""

from __future__ import annotations

from typing import Any

from invoke.parser.parser import ParseMachine

_PATCHED = "_prefect_julia_optional_positionals"


def allow_optional_positionals() -> None:
    if getattr(ParseMachine, _PATCHED, False):
        return
    original = ParseMachine.complete_context

    def complete_context(self: Any) -> None:
        if self.context is not None:
            for argument in self.context.positional_args:
                if argument.value is None:
                    argument.value = ""
        original(self)

    ParseMachine.complete_context = complete_context  # type: ignore[method-assign]
    setattr(ParseMachine, _PATCHED, True)
