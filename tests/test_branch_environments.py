"""Branch environments without a server: names from branches, the mapping's rules, the shared record, the
declared set, and where reads fall back to."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness import free_port, make_kit_repo
from prefect_julia.core.errors import ConfigError
from prefect_julia.kit.environment import registry
from prefect_julia.kit.environment.branches import declared_environments, load_branch_mapping, slug
from prefect_julia.kit.environment.environments import FALLBACK_NAME, FALLBACK_ROOT, resolve_environment


@pytest.mark.parametrize(
    ("branch", "name"),
    [("feature/sales", "feature-sales"), ("fix-1", "fix-1"), ("wip", "wip")],
)
def test_slug_keeps_a_branch_that_only_loses_slashes(branch: str, name: str) -> None:
    assert slug(branch) == name


@pytest.mark.parametrize("branch", ["Feature/Sales", "feat_x", "feature//a", "1-fix", "a" * 60])
def test_slug_adds_a_hash_when_characters_are_lost(branch: str) -> None:
    name = slug(branch)
    assert name != branch.replace("/", "-") and len(name) <= 47
    assert name[0].isalpha() and name == name.lower()
    assert slug(branch) == name  # stable


def _repo(tmp_path: Path, branch: str = "feature/a") -> Path:
    repo = make_kit_repo(tmp_path, branch=branch, seed=False, per_branch=True)
    return repo.root


def test_mapping_patterns_and_their_conflicts(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    (root / "envs" / "staging.env").write_text("")
    (root / "envs" / "branches.toml").write_text(
        '[branches]\nmain = "prod"\n"release/*" = "staging"\n"release/1.*" = "dev"\n"release/2" = "dev"\n'
        '[default]\nper_branch = true\nbase = "dev"\n'
    )
    mapping = load_branch_mapping(root)
    assert mapping.environment_for("main") == "prod"
    assert mapping.environment_for("release/3") == "staging"
    assert mapping.environment_for("release/2") == "dev"  # the exact name beats the patterns
    assert mapping.environment_for("feature/x") is None  # an environment of its own
    with pytest.raises(ConfigError, match="matches 2 patterns") as error:
        mapping.environment_for("release/1.4")
    assert error.value.hint


def test_old_default_form_still_reads(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    (root / "envs" / "branches.toml").write_text('default = "dev"\n\n[branches]\nmain = "prod"\n')
    assert resolve_environment(None, root, {}).name == "dev"
    assert registry.entries(root) == []


@pytest.mark.parametrize(
    ("file", "message"),
    [("Staging.env", "cannot be an environment name"), ("deploy.env", "is also a task")],
)
def test_unsafe_environment_names_are_refused(tmp_path: Path, file: str, message: str) -> None:
    root = _repo(tmp_path)
    (root / "envs" / file).write_text("")
    with pytest.raises(ConfigError, match=message) as error:
        declared_environments(root)
    assert error.value.hint


def test_a_mapping_to_an_undeclared_environment_is_refused(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    (root / "envs" / "branches.toml").write_text('[branches]\n"release/*" = "staging"\n')
    with pytest.raises(ConfigError, match="unknown environment 'staging'") as error:
        load_branch_mapping(root)
    assert "envs/staging.env" in (error.value.hint or "")


def test_staging_is_declared_by_its_file_alone(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    (root / "envs" / "staging.env").write_text("")
    assert declared_environments(root) == ("dev", "prod", "staging")
    env = resolve_environment("staging", root, {})
    assert env.home == root / ".prefect" / "staging" and env.require("PREFECT_JULIA_WORK_POOL") == "staging-process"
    assert env.port not in (4300, 4309)


def test_a_branch_gets_its_own_recorded_environment(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    env = resolve_environment(None, root, {})
    assert (env.name, env.base, env.branch) == ("feature-a", "dev", "feature/a")
    assert env.home == root / ".prefect" / "feature-a" and env.data_root == root / "data" / "feature-a"
    assert env.require("PREFECT_JULIA_WORK_POOL") == "feature-a-process"
    assert env.code_source == "tree" and env.declares == "dev"
    again = resolve_environment(None, root, {})
    assert again.port == env.port  # recorded, not chosen again
    assert resolve_environment("feature-a", root, {}).port == env.port
    [entry] = registry.entries(root)
    assert (entry.name, entry.branch, entry.checkout, entry.port) == ("feature-a", "feature/a", str(root), env.port)
    path = registry.registry_path(root)
    assert path is not None and path.stat().st_mode & 0o777 == 0o600


def test_worktrees_share_one_record_and_names_do_not_collide(tmp_path: Path) -> None:
    root = _repo(tmp_path / "clone", branch="feature/a-b")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "kit"], cwd=root, check=True)
    other = tmp_path / "wt"
    subprocess.run(["git", "worktree", "add", "-q", "-b", "feature-a/b", str(other)], cwd=root, check=True)
    first = resolve_environment(None, root, {})
    second = resolve_environment(None, other, {})
    assert first.name == "feature-a-b" and second.name.startswith("feature-a-b-") and first.port != second.port
    assert (
        {e.name for e in registry.entries(root)}
        == {e.name for e in registry.entries(other)}
        == {
            first.name,
            second.name,
        }
    )
    # a worktree's branch environment reads what dev wrote in the clone's main working tree, not the
    # worktree's own (empty) data/dev
    assert second.exports(secrets=False)[FALLBACK_ROOT] == str((root / "data" / "dev").resolve())


def test_no_free_port_is_an_error_and_records_nothing(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    port = free_port()
    (root / "envs" / "dev.local.env").write_text(
        f"PREFECT_JULIA_PORT={port}\nPREFECT_JULIA_BRANCH_PORTS={port}-{port}\n"
    )
    with pytest.raises(ConfigError, match="No free port") as error:
        resolve_environment(None, root, {})
    assert "env-prune" in (error.value.hint or "")
    assert registry.entries(root) == []


def test_reads_fall_back_to_the_base_only(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    branch = resolve_environment(None, root, {})
    exported = branch.exports(secrets=False)
    assert exported[FALLBACK_ROOT] == str((root / "data" / "dev").resolve()) and exported[FALLBACK_NAME] == "dev"
    for env in (resolve_environment("dev", root, {}), resolve_environment("prod", root, {})):
        assert FALLBACK_ROOT not in env.exports(secrets=False)
    (root / "envs" / "feature-a.local.env").write_text("PREFECT_JULIA_READ_FROM=none\n")
    assert FALLBACK_NAME not in resolve_environment(None, root, {}).exports(secrets=False)
    (root / "envs" / "feature-a.local.env").write_text("PREFECT_JULIA_READ_FROM=prod\n")
    assert resolve_environment(None, root, {}).exports(secrets=False)[FALLBACK_NAME] == "prod"
    (root / "envs" / "feature-a.local.env").write_text("PREFECT_JULIA_READ_FROM=qa\n")
    with pytest.raises(ConfigError, match="PREFECT_JULIA_READ_FROM"):
        resolve_environment(None, root, {}).exports(secrets=False)
