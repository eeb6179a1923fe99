"""The layer check: the real package passes, and a wrong-way import in a copy of it is caught."""

from __future__ import annotations

import shutil
from pathlib import Path

from prefect_julia.gates import layers

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_respects_its_layers() -> None:
    assert layers.check(ROOT) == []


def _copy_package(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "src" / "prefect_julia", tmp_path / "src" / "prefect_julia")
    return tmp_path


def test_runtime_importing_the_kit_is_refused(tmp_path: Path) -> None:
    root = _copy_package(tmp_path)
    bridge = root / "src/prefect_julia/runtime/bridge.py"
    bridge.write_text(bridge.read_text() + "\nfrom prefect_julia.kit import servers  # noqa\n")
    problems = layers.check(root)
    assert len(problems) == 1
    assert "runtime/bridge.py" in problems[0] and "prefect_julia.kit" in problems[0]


def test_core_importing_any_layer_and_loose_modules_are_refused(tmp_path: Path) -> None:
    root = _copy_package(tmp_path)
    files = root / "src/prefect_julia/core/files.py"
    files.write_text(files.read_text() + "\nimport prefect_julia.runtime.dataset  # noqa\n")
    (root / "src/prefect_julia/loose.py").write_text("x = 1\n")
    problems = layers.check(root)
    assert any("core/files.py" in p and "prefect_julia.runtime" in p for p in problems)
    assert any("loose.py" in p and "layer folder" in p for p in problems)
