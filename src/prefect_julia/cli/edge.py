"""The boundary: turns the kit's errors into a message on stderr and an exit code.

Only ``tasks.py`` (and other entry points) use this; library code raises ``PrefectJuliaError``s.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from prefect_julia.core.errors import PrefectJuliaError

P = ParamSpec("P")
R = TypeVar("R")


def fail(error: PrefectJuliaError) -> None:
    """Print ``error`` for a person and exit with its code."""
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(error.exit_code)


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate an entry point so a ``PrefectJuliaError`` becomes a message and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except PrefectJuliaError as error:
            fail(error)
            raise  # unreachable: fail() exits

    return wrapper
