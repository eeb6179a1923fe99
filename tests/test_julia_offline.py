"""Julia's package conventions offline: after scripts/install-julia.sh, julia/README.md's set-up command works
in a depot that had no registry (Pkg would otherwise try to clone the General registry from GitHub).

Each test runs the real install script (it finds the julia already on PATH and installs nothing) and a real
julia, in a temporary HOME or JULIA_DEPOT_PATH: the user's own ~/.julia is never read or written.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from prefect_julia.runtime.bridge import find_julia

pytestmark = pytest.mark.julia

README = REPO_ROOT / "julia" / "README.md"
INSTALL = REPO_ROOT / "scripts" / "install-julia.sh"


def readme_develop_command() -> str:
    """The shell line of julia/README.md's Set-up section that develops the package into one's own project."""
    section = README.read_text().split("## Set-up", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block, f"no ```sh block in the Set-up section of {README}"
    lines = [line.strip() for line in block.group(1).splitlines() if "Pkg.develop(" in line]
    assert len(lines) == 1, f"expected one Pkg.develop line in the Set-up section of {README}, found {lines}"
    return lines[0]


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without Julia or Prefect settings, with HOME in a temporary folder and the
    julia the kit would run first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JULIA_", "PREFECT_"))}
    julia_dir = str(Path(find_julia(os.environ)).parent)
    env.update(HOME=str(home), PATH=f"{julia_dir}{os.pathsep}{env.get('PATH', os.defpath)}", **extra)
    return env


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("depot_from", ["home", "JULIA_DEPOT_PATH"])
def test_install_then_readme_command_works_in_a_depot_without_registry(tmp_path: Path, depot_from: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    depot = home / ".julia" if depot_from == "home" else tmp_path / "depot"
    env = clean_env(home, **({"JULIA_DEPOT_PATH": str(depot)} if depot_from == "JULIA_DEPOT_PATH" else {}))

    install = run(["bash", str(INSTALL)], env, REPO_ROOT)
    assert install.returncode == 0, install.stdout + install.stderr
    registry = depot / "registries" / "Empty" / "Registry.toml"
    assert registry.is_file(), install.stderr
    assert f"note: wrote an empty Julia package registry to {registry.parent}" in install.stderr
    assert registry.stat().st_mode & 0o077 == 0, oct(registry.stat().st_mode)

    # The command as the README prints it, from a folder holding the package as `julia/` (a copy, so that
    # nothing is written into the repository).
    work = tmp_path / "work"
    shutil.copytree(REPO_ROOT / "julia", work / "julia", ignore=shutil.ignore_patterns("Manifest.toml"))
    command = readme_develop_command()
    proc = run(["bash", "-c", command], env, work)
    assert proc.returncode == 0, f"{command}\nexit {proc.returncode}\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    environments = list((depot / "environments").glob("*/Project.toml"))
    assert environments and "PrefectInterfaces" in environments[0].read_text(), environments


def test_install_leaves_an_existing_registry_alone(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    mine = home / ".julia" / "registries" / "Mine"
    mine.mkdir(parents=True)
    text = 'name = "Mine"\nuuid = "0c5e2a3d-6f0b-4c8e-9a55-3b1f7e2d9c41"\nrepo = ""\n\n[packages]\n'
    (mine / "Registry.toml").write_text(text)
    env = clean_env(home)

    install = run(["bash", str(INSTALL)], env, REPO_ROOT)
    assert install.returncode == 0, install.stdout + install.stderr
    assert sorted(p.name for p in mine.parent.iterdir()) == ["Mine"], install.stderr
    assert (mine / "Registry.toml").read_text() == text
    assert "registry" not in install.stderr, install.stderr
