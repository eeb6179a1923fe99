"""constraints.txt pins every dependency at a version pyproject.toml allows, and names no package index."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import REPO_ROOT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"constraints.txt: {line!r} is not a plain `name==version` pin"
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    groups = project.get("optional-dependencies", {}).values()
    return [Requirement(r) for r in [*project["dependencies"], *(r for group in groups for r in group)]]


def test_constraints_name_no_index_or_url() -> None:
    text = (REPO_ROOT / "constraints.txt").read_text(encoding="utf-8")
    assert "://" not in text and "--index" not in text and "--extra-index" not in text and "--find-links" not in text
    assert "prefect-julia" not in _pins()


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = _pins()
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is declared in pyproject.toml but not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside pyproject.toml's {requirement}"
        )


def test_the_scheduler_safe_sqlalchemy_is_pinned_and_installed() -> None:
    assert _pins()["sqlalchemy"].startswith("2.0.")
    assert metadata.version("sqlalchemy").startswith("2.0.")
