"""The newest passed gate's time, step by step, as the gate recorded it (the gate itself is not run here).

.venv/bin/python benchmarks/gate_time.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_report import gate_lines, newest_gate  # noqa: E402
from prefect_julia.core.errors import PrefectJuliaError  # noqa: E402
from prefect_julia.gates import passes  # noqa: E402


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    try:
        records = passes.records_dir(HERE.parent)
    except (PrefectJuliaError, OSError) as error:  # not a git checkout: no record can exist
        print(f"  no passed gate is recorded: {error}")
        return None
    record = newest_gate(records)
    print("\n".join(gate_lines(record, lambda at: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)))))
    return record


if __name__ == "__main__":
    main(sys.argv[1:])
