from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from conftest import KitRepo, make_kit_repo
from prefect_julia.core.errors import ConfigError
from prefect_julia.kit.access import security
from prefect_julia.kit.environment.environments import describe_sources, load_branch_mapping, resolve_environment
from prefect_julia.kit.environment.settings import CODE_SOURCE
from prefect_julia.kit.environment.settings import DECLARED as SETTINGS_BY_NAME


@pytest.mark.parametrize(("branch", "env"), [("main", "prod"), ("feature/x", "dev"), ("dev", "dev")])
def test_branch_decides_the_environment(tmp_path: Path, branch: str, env: str) -> None:
    repo = make_kit_repo(tmp_path, branch=branch)
    assert resolve_environment(None, repo.root, {}).name == env


def test_environment_resolves_everything(kit_repo: KitRepo) -> None:
    env = resolve_environment("dev", kit_repo.root, {})
    port = kit_repo.ports["dev"]
    assert env.port == port
    assert env.home == kit_repo.root / ".prefect" / "dev"
    assert env.api_url == f"http://127.0.0.1:{port}/api"
    assert env.ui_url == f"http://127.0.0.1:{port}"
    assert env.files.server_log.parent == env.files.worker_pid.parent == env.home
    assert env.files.database == env.home / "prefect.db"
    sources = {name: source for name, _, source, _ in describe_sources(env)}
    assert sources["PREFECT_JULIA_PORT"] == "envs/dev.local.env"
    assert sources["PREFECT_JULIA_WORK_POOL"] == "envs/dev.env"
    assert sources["PREFECT_JULIA_HOST"] == "default"


def test_not_a_git_repository_falls_back_to_dev_and_says_so(tmp_path: Path) -> None:
    repo = make_kit_repo(tmp_path, git=False)
    notes: list[str] = []
    assert resolve_environment(None, repo.root, {}, notes=notes).name == "dev"
    assert "not in a git repository" in notes[0]


def test_unknown_environment(kit_repo: KitRepo) -> None:
    with pytest.raises(ConfigError, match="Unknown environment 'staging'") as error:
        resolve_environment("staging", kit_repo.root, {})
    assert "dev, prod" in str(error.value)


def test_missing_branch_mapping(kit_repo: KitRepo) -> None:
    (kit_repo.root / "envs" / "branches.toml").unlink()
    with pytest.raises(ConfigError, match="missing"):
        resolve_environment(None, kit_repo.root, {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("default = \n", "not valid TOML"),
        ('default = "qa"\n', "unknown environment 'qa'"),
        ("branches = 3\n", "must map"),
    ],
)
def test_malformed_branch_mapping(kit_repo: KitRepo, text: str, message: str) -> None:
    (kit_repo.root / "envs" / "branches.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_branch_mapping(kit_repo.root)


@pytest.mark.parametrize("port", ["http", "0", "70000", "-1", "43.5"])
def test_bad_port(kit_repo: KitRepo, port: str) -> None:
    (kit_repo.root / "envs" / "dev.local.env").write_text(f"PREFECT_JULIA_PORT={port}\n")
    with pytest.raises(ConfigError, match="is not a port number") as error:
        resolve_environment("dev", kit_repo.root, {})
    assert "envs/dev.local.env" in str(error.value)


def test_malformed_env_file_stops_resolution(kit_repo: KitRepo) -> None:
    (kit_repo.root / "envs" / "dev.env").write_text("PREFECT_JULIA_PORT 4309\n")
    with pytest.raises(ConfigError, match=r"dev\.env:1"):
        resolve_environment("dev", kit_repo.root, {})


def test_process_env_redirects_to_a_remote_server(kit_repo: KitRepo) -> None:
    env = resolve_environment(
        "prod",
        kit_repo.root,
        {"PREFECT_API_URL": "https://prefect.example.invalid/api", "PREFECT_API_KEY": "pnu_x"},
    )
    assert env.api_url == "https://prefect.example.invalid/api"
    shown = {name: value for name, value, _, _ in describe_sources(env)}
    assert shown["PREFECT_API_KEY"] == "********"
    assert "PREFECT_API_KEY" not in env.prefect_settings()


def test_every_declared_setting_is_listed_with_its_help(kit_repo: KitRepo) -> None:
    env = resolve_environment("dev", kit_repo.root, {})
    rows = {name: (value, source, help_text) for name, value, source, help_text in describe_sources(env)}
    assert set(SETTINGS_BY_NAME) <= set(rows)
    assert all(rows[name][2] == setting.help for name, setting in SETTINGS_BY_NAME.items())
    assert rows["PREFECT_JULIA_BIN"][:2] == ("", "not set")
    assert rows["PREFECT_JULIA_JULIA_TIMEOUT"][:2] == ("3600", "default")


def test_shell_exports_and_spawned_processes_agree(kit_repo: KitRepo) -> None:
    """One definition: what `invoke env --shell` exports is what a spawned process gets, minus secrets."""
    (kit_repo.root / "envs" / "dev.local.env").write_text(
        f"PREFECT_JULIA_PORT={kit_repo.ports['dev']}\nDEMO_API_TOKEN=tok-123\nMY_SETTING=a\n"
    )
    env = resolve_environment("dev", kit_repo.root, kit_repo.environ())  # the settings `invoke` runs with
    spawned = env.process_env({"PATH": "/bin", "PREFECT_PROFILE": "stale"})
    run = kit_repo.invoke("env", "--env", "dev", "--shell", check=True)
    shell = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in run.stdout.splitlines() if line)
    assert "tok-123" not in run.stdout and "DEMO_API_TOKEN" not in shell
    assert {k: v for k, v in spawned.items() if k not in ("PATH", "DEMO_API_TOKEN")} == shell
    assert spawned["DEMO_API_TOKEN"] == "tok-123" and "PREFECT_PROFILE" not in spawned
    assert shell["PREFECT_JULIA_PROJECT"] == str(kit_repo.root / "julia") and shell["MY_SETTING"] == "a"


@pytest.mark.parametrize(("env", "line", "on"), [("prod", "", True), ("dev", "", True), ("dev", "off", False)])
def test_a_blank_switch_in_an_env_file_is_the_environments_default(
    kit_repo: KitRepo, env: str, line: str, on: bool
) -> None:
    with (kit_repo.root / "envs" / f"{env}.local.env").open("a") as local:
        local.write(f"PREFECT_JULIA_AUTH={line}\n")
    assert security.auth_enabled(resolve_environment(env, kit_repo.root, {})) is on


def test_a_blank_choice_in_an_env_file_is_the_environments_default(kit_repo: KitRepo) -> None:
    with (kit_repo.root / "envs" / "prod.local.env").open("a") as local:
        local.write("PREFECT_JULIA_CODE_SOURCE=\n")
    assert resolve_environment("prod", kit_repo.root, {}).choice(CODE_SOURCE) == "worktree"
