"""Checks made before the kit touches a private part of a dependency: its names and signatures, at start.

Where no public extension point exists (docs/architecture.md, "Private parts of dependencies"), the kit first
checks that the part is what it was tested on; when a dependency's upgrade changed it, the kit leaves it alone and
keeps the dependency's plain behaviour.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence


def signature_is(fn: object, params: Sequence[str]) -> bool:
    """True when ``fn`` is callable and takes exactly the parameters ``params``, in order (names only)."""
    if not callable(fn):
        return False
    try:
        return list(inspect.signature(fn).parameters) == list(params)
    except (TypeError, ValueError):
        return False
