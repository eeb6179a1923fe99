"""The layer check: the real package passes, and a wrong-way import in a copy of it is caught."""

from __future__ import annotations

import re
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


def test_the_layout_docs_name_every_module() -> None:
    """README's layout section and docs/architecture.md list each layer's modules as the tree holds them."""
    readme = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    for layer in layers.ALLOWED:
        modules = sorted(p.stem for p in (ROOT / "src" / "prefect_julia" / layer).glob("*.py") if p.stem != "__init__")
        entry = re.search(rf"^  {layer}/ +(.*(?:\n {{16}}.*)*)", readme, re.MULTILINE)
        assert entry is not None, f"README's layout has no {layer}/ entry"
        named = set(re.findall(r"\w+", entry.group(1)))
        assert [m for m in modules if m not in named] == [], f"README's layout misses modules of {layer}/"
        assert [m for m in modules if not re.search(rf"\b{m}\b", architecture)] == [], layer
    for sub in layers.KIT_ORDER:
        modules = sorted(p.stem for p in (ROOT / "src/prefect_julia/kit" / sub).glob("*.py") if p.stem != "__init__")
        entry = re.search(rf"^    {sub}/ +(.*)$", readme, re.MULTILINE)
        assert entry is not None, f"README's layout has no kit/{sub}/ entry"
        assert [m for m in modules if m not in set(re.findall(r"\w+", entry.group(1)))] == [], sub
        assert [m for m in modules if not re.search(rf"\b{m}\b", architecture)] == [], sub


def test_an_import_cycle_is_refused_inside_a_layer_too(tmp_path: Path) -> None:
    root = _copy_package(tmp_path)
    home = root / "src/prefect_julia/kit/environment/home.py"
    home.write_text(
        home.read_text()
        + "\n\ndef _later() -> None:\n    from prefect_julia.kit.environment import environments  # noqa\n"
    )
    problems = layers.check(root)
    cycles = [p for p in problems if p.startswith("import cycle")]
    assert len(cycles) == 1, problems
    assert "kit.environment.home" in cycles[0] and "kit.environment.environments" in cycles[0]


def test_an_import_only_for_the_type_checker_is_no_cycle(tmp_path: Path) -> None:
    root = _copy_package(tmp_path)
    home = root / "src/prefect_julia/kit/environment/home.py"
    home.write_text(
        home.read_text()
        + "\nfrom typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
        + "    from prefect_julia.kit.environment import environments  # noqa\n"
    )
    assert layers.check(root) == []


def test_a_kit_sub_package_importing_a_later_one_is_refused(tmp_path: Path) -> None:
    root = _copy_package(tmp_path)
    settings = root / "src/prefect_julia/kit/environment/settings.py"
    settings.write_text(settings.read_text() + "\nfrom prefect_julia.kit.server import servers  # noqa\n")
    problems = layers.check(root)
    assert any(
        "kit/environment/settings.py" in p and "kit/environment imports kit/server, which comes after it" in p
        for p in problems
    ), problems


def test_a_kit_module_outside_the_sub_packages_is_refused(tmp_path: Path) -> None:
    root = _copy_package(tmp_path)
    (root / "src/prefect_julia/kit/loose.py").write_text("x = 1\n")
    (root / "src/prefect_julia/kit/extra").mkdir()
    (root / "src/prefect_julia/kit/extra/__init__.py").write_text("")
    problems = layers.check(root)
    assert any("kit/loose.py" in p and "sub-package" in p for p in problems), problems
    assert any("kit/extra/" in p and "KIT_ORDER" in p for p in problems), problems


def test_the_kit_sub_packages_are_the_order() -> None:
    folders = {p.name for p in (ROOT / "src/prefect_julia/kit").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(layers.KIT_ORDER)
