"""Julia's log records as the bridge reads them from a job's stderr.

Two forms: ``::prefect-log::{json}`` lines (``PREFECT_JULIA_LOG_FORMAT=prefect``, what PrefectInterfaces writes
for a job the bridge runs) and the boxes of Julia's ConsoleLogger; any other line is plain output.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LOG_PREFIX", "Event", "JuliaLog", "StderrParser", "level_number", "parse_prefect_log"]

LOG_PREFIX = "::prefect-log::"

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
_CONSOLE_OPEN = re.compile(r"^(?P<box>\[|┌) (?P<level>Debug|Info|Warning|Error|LogLevel\(-?\d+\)): ?(?P<msg>.*)$")
_CONSOLE_LOCATION = re.compile(r"^└ @ (?P<module>\S+) (?P<file>.+?):(?P<line>\d+)$")


def level_number(name: str) -> int:
    """A Julia or Prefect level name as a ``logging`` level; unknown names are INFO."""
    return _LEVELS.get(name.strip().lower(), logging.INFO)


@dataclass(frozen=True)
class JuliaLog:
    """One log record written by the Julia program."""

    level: int
    message: str
    module: str = ""
    file: str = ""
    line: int | None = None
    #: The stack trace of the error that ended the job (``uncaught``), cut to the job's and the package's frames.
    stacktrace: str = ""
    uncaught: bool = False

    def render(self) -> str:
        """The record as one log message; WARNING and above carry their source location, then any stack trace."""
        text = self.message
        if self.level >= logging.WARNING and self.file:
            where = f"{self.module} " if self.module else ""
            line = f":{self.line}" if self.line is not None else ""
            text = f"{self.message} (@ {where}{self.file}{line})"
        return f"{text}\n{self.stacktrace}" if self.stacktrace else text

    def summary(self) -> str:
        """``file.jl:LINE: message``: the error as a failed task's state message says it."""
        line = f":{self.line}" if self.line is not None else ""
        where = f"{Path(self.file).name}{line}: " if self.file else ""
        return f"{where}{self.message}"


def parse_prefect_log(line: str) -> JuliaLog | None:
    """Parse a ``::prefect-log::{json}`` line; ``None`` if ``line`` is not a well-formed one."""
    if not line.startswith(LOG_PREFIX):
        return None
    try:
        doc = json.loads(line[len(LOG_PREFIX) :])
    except json.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or "message" not in doc:
        return None
    raw_line = doc.get("line")
    return JuliaLog(
        level=level_number(str(doc.get("level", "INFO"))),
        message=str(doc["message"]),
        module=str(doc.get("module") or ""),
        file=str(doc.get("file") or ""),
        line=raw_line if isinstance(raw_line, int) else None,
        stacktrace=str(doc.get("stacktrace") or ""),
        uncaught=doc.get("uncaught") is True,
    )


Event = JuliaLog | str


@dataclass
class StderrParser:
    """Turns Julia's stderr lines into log records (structured or ConsoleLogger boxes) and plain lines."""

    _level: int | None = None
    _lines: list[str] = field(default_factory=list)

    def feed(self, line: str) -> list[Event]:
        """Consume one line (without its newline); return the events it completes."""
        record = parse_prefect_log(line)
        if record is not None:
            return [*self.flush(), record]
        opened = _CONSOLE_OPEN.match(line)
        if opened:
            events = self.flush()
            level = level_number(opened["level"])
            if opened["box"] == "[":
                return [*events, JuliaLog(level, opened["msg"])]
            self._level, self._lines = level, [opened["msg"]]
            return events
        if self._level is not None:
            return self._continue_box(line)
        return [line]

    def _continue_box(self, line: str) -> list[Event]:
        location = _CONSOLE_LOCATION.match(line)
        if location:
            return self._close(location["module"], location["file"], int(location["line"]))
        if line.startswith("│"):
            self._lines.append(line[1:].removeprefix(" "))
            return []
        if line.startswith("└"):
            self._lines.append(line[1:].removeprefix(" "))
            return self._close()
        return [*self.flush(), line]

    def _close(self, module: str = "", file: str = "", line: int | None = None) -> list[Event]:
        assert self._level is not None
        record = JuliaLog(self._level, "\n".join(self._lines).rstrip(), module, file, line)
        self._level, self._lines = None, []
        return [record]

    def flush(self) -> list[Event]:
        """Emit a box left open (the program died mid-record)."""
        return self._close() if self._level is not None else []
