"""What a person sees: plain tables and a progress line. No colours, nothing to install."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A left-aligned text table."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


class Progress:
    """A one-line progress indicator: rewritten in place on a terminal, a line every 5 s otherwise."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last_line = -5.0
        self.frame = 0

    def __call__(self, elapsed: float) -> None:
        if self.tty:
            spinner = "|/-\\"[self.frame % 4]
            self.frame += 1
            self.stream.write(f"\r{spinner} {self.label} {elapsed:5.1f} s")
            self.stream.flush()
        elif elapsed - self.last_line >= 5:
            self.last_line = elapsed
            self.stream.write(f"... {self.label} {elapsed:.0f} s\n")
            self.stream.flush()

    def done(self) -> None:
        if self.tty and self.frame:
            self.stream.write("\r" + " " * (len(self.label) + 12) + "\r")
            self.stream.flush()
