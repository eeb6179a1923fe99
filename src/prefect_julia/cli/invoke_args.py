"""Bad command-line arguments become the kit's message, ``fix:`` line and exit code 2 (``friendly_parse_errors``).

Call it from ``tasks.py``; invoke loads that module before it parses the task arguments.
"""

from __future__ import annotations

from typing import Any

from prefect_julia.kit.environments import ENVIRONMENTS

_FRIENDLY = "_prefect_julia_friendly_parse_errors"
_KINDS = {int: "a whole number", float: "a number", bool: "nothing (it is a switch)"}


def friendly_parse_errors() -> None:
    """Bad command-line arguments exit 2 with a message and a ``fix:`` line, never a traceback.

    invoke raises a bare ``ValueError`` for a value its type cast refuses (``--lines=abc``) and exits 1 on a
    ``ParseError`` (an unknown flag or task); both become invoke's ``Exit`` with the kit's wording and code.
    """
    from invoke.exceptions import Exit, ParseError
    from invoke.parser.argument import Argument
    from invoke.parser.parser import Parser

    if getattr(Argument, _FRIENDLY, False):
        return
    set_value = Argument.set_value
    parse_argv = Parser.parse_argv

    def checked_set_value(self: Any, value: Any, cast: bool = True) -> None:
        try:
            set_value(self, value, cast)
        except ValueError:
            flag = "--" + self.name.replace("_", "-")
            kind = _KINDS.get(self.kind, self.kind.__name__)
            raise Exit(
                f"error: {flag} expects {kind}, not {value!r}.\n  fix: See `invoke --help TASK` for its options.",
                code=2,
            ) from None

    def checked_parse_argv(self: Any, argv: Any) -> Any:
        try:
            return parse_argv(self, argv)
        except ParseError as error:
            fix = "`invoke --list` shows the tasks, `invoke --help TASK` a task's options."
            stray = [word for word in argv if word in ENVIRONMENTS and f"'{word}'" in str(error)]
            if stray:  # an environment given as a bare word after the task: it is an option now
                fix = f"Name the environment with --env: `invoke TASK --env {stray[0]}` (or `just TASK {stray[0]}`)."
            raise Exit(f"error: {error}\n  fix: {fix}", code=2) from None

    Argument.set_value = checked_set_value  # type: ignore[method-assign]
    Parser.parse_argv = checked_parse_argv  # type: ignore[method-assign]
    setattr(Argument, _FRIENDLY, True)
