"""How the benchmarks report: medians, kit / raw ratios against a target, the machine's load, the gate's time.

Every benchmark measures the kit beside the raw tool in the same run (interleaved rounds), so a busy machine
slows both; the load average printed with the figures says how busy it was.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def ratio(kit: float, raw: float) -> float:
    """``kit / raw``; infinite when the raw figure is 0 (nothing to compare with)."""
    return kit / raw if raw else float("inf")


def verdict(value: float, target: float, *, at_most: bool = True) -> str:
    """``met`` or ``MISSED`` for ``value`` against ``target`` (an upper bound unless ``at_most`` is False)."""
    return "met" if (value <= target if at_most else value >= target) else "MISSED"


def ratio_line(label: str, kit: float, raw: float, target: float | None = None) -> str:
    """``  label : 1.234`` with ``(target <= T: met)`` when there is a target."""
    value = ratio(kit, raw)
    line = f"  {label:<39}: {value:8.3f}"
    return line if target is None else f"{line}   (target <= {target}: {verdict(value, target)})"


def each(values: Iterable[float], digits: int = 1) -> str:
    """``1.2, 3.4`` for the per-round figures."""
    return ", ".join(f"{v:.{digits}f}" for v in values)


def load_line(loadavg: Callable[[], tuple[float, float, float]] = os.getloadavg, cores: int | None = None) -> str:
    """``load average 1.52 1.20 0.98 on 2 cores``: how busy the machine was while the figures were taken."""
    one, five, fifteen = loadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {cores or os.cpu_count() or 1} cores"


def newest_gate(records: Path) -> dict[str, Any] | None:
    """The newest passed-gate record in ``records`` (the gate's record folder), or None when there is none."""
    newest: dict[str, Any] | None = None
    for path in records.glob("*") if records.is_dir() else ():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            at = float(data["at"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if newest is None or at > float(newest["at"]):
            newest = data
    return newest


def gate_lines(record: dict[str, Any] | None, when: Callable[[float], str]) -> list[str]:
    """What ``invoke bench`` prints about the newest passed gate: per step time where recorded, else the tests'
    closing line; or that none is recorded and which command records one."""
    if record is None:
        return ["  no passed gate is recorded for this repository: `invoke gate` on a clean checkout records one"]
    lines = [f"  newest passed gate: tree {str(record.get('tree', '?'))[:10]} at {when(float(record['at']))}"]
    steps = record.get("steps")
    if isinstance(steps, dict) and steps:
        lines += [f"  {name:<39}: {float(seconds):8.1f} s" for name, seconds in steps.items()]
        lines.append(f"  {'whole gate':<39}: {sum(float(s) for s in steps.values()):8.1f} s")
    elif record.get("tests"):
        lines.append(f"  tests: {record['tests']}   (the record holds no per-step times)")
    else:
        lines.append("  the record holds no times")
    return lines
