from __future__ import annotations

from pathlib import Path

import pytest

from prefect_julia.core.errors import ConfigError
from prefect_julia.core.setting import Setting, per_environment
from prefect_julia.kit.environment.settings import Source, read_env_file, resolve


@pytest.mark.parametrize(
    ("committed", "local", "process", "value", "source"),
    [
        ({}, {}, {}, "4309", Source.DEFAULT),
        ({"PREFECT_JULIA_PORT": "5000"}, {}, {}, "5000", Source.COMMITTED),
        ({"PREFECT_JULIA_PORT": "5000"}, {"PREFECT_JULIA_PORT": "5001"}, {}, "5001", Source.LOCAL),
        (
            {"PREFECT_JULIA_PORT": "5000"},
            {"PREFECT_JULIA_PORT": "5001"},
            {"PREFECT_JULIA_PORT": "5002"},
            "5002",
            Source.PROCESS,
        ),
        ({}, {}, {"PREFECT_JULIA_PORT": "5002", "PREFECT_JULIA_ENV": "prod"}, "4309", Source.DEFAULT),
        ({}, {}, {"PREFECT_JULIA_PORT": "5002", "PREFECT_JULIA_ENV": "dev"}, "5002", Source.PROCESS),
    ],
)
def test_precedence_and_sources(committed, local, process, value, source) -> None:
    resolved = resolve("dev", committed=committed, local=local, process=process)
    assert resolved["PREFECT_JULIA_PORT"].value == value
    assert resolved["PREFECT_JULIA_PORT"].source is source


def test_defaults_derive_from_earlier_settings() -> None:
    resolved = resolve("prod", committed={"PREFECT_JULIA_PORT": "4400"}, local={}, process={})
    assert resolved["PREFECT_API_URL"].value == "http://127.0.0.1:4400/api"
    assert resolved["PREFECT_JULIA_WORK_POOL"].value == "prod-process"


def test_process_value_for_another_environment_is_ignored_and_said() -> None:
    resolved = resolve(
        "prod", committed={}, local={}, process={"PREFECT_JULIA_ENV": "dev", "PREFECT_JULIA_PORT": "4309"}
    )
    assert resolved["PREFECT_JULIA_PORT"].value == "4300"
    assert "exported for dev" in resolved["PREFECT_JULIA_PORT"].note


def test_extra_names_come_from_files_and_secrets_are_masked() -> None:
    resolved = resolve(
        "dev",
        committed={"MY_SETTING": "a"},
        local={"DEMO_API_TOKEN": "hunter2"},
        process={"DEMO_API_TOKEN": "from-shell", "UNRELATED": "x"},
    )
    assert resolved["MY_SETTING"].value == "a"
    token = resolved["DEMO_API_TOKEN"]
    assert token.value == "from-shell" and token.source is Source.PROCESS
    assert token.secret and token.shown() == "********"
    assert "UNRELATED" not in resolved


def test_read_env_file(tmp_path: Path) -> None:
    path = tmp_path / "dev.env"
    path.write_text("# comment\nA=1\nB='two words'\nexport C=3\n\n")
    assert read_env_file(path) == {"A": "1", "B": "two words", "C": "3"}
    assert read_env_file(tmp_path / "missing.env") == {}


@pytest.mark.parametrize("line", ["this is not a setting", "JUST_A_NAME", "A='unterminated"])
def test_malformed_env_line_names_file_and_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "dev.env"
    path.write_text(f"A=1\n{line}\n")
    with pytest.raises(ConfigError) as error:
        read_env_file(path)
    assert f"{path}:2" in str(error.value)
    assert "NAME=value" in str(error.value)


@pytest.mark.parametrize(
    ("raw", "on"), [("on", True), (" YES ", True), ("1", True), ("Off", False), ("no", False), ("", False)]
)
def test_switch_setting_reads_on_and_off_words(raw: str, on: bool) -> None:
    switch = Setting("X_SWITCH", "a switch", default="off", kind="switch")
    assert switch.switch(raw) is on


def test_switch_setting_refuses_other_words_naming_where_it_came_from() -> None:
    switch = Setting("X_SWITCH", "a switch", default="off", kind="switch")
    with pytest.raises(ConfigError, match=r"X_SWITCH='maybe' \(from envs/dev.env\) is neither on nor off") as caught:
        switch.switch("maybe", "envs/dev.env")
    assert caught.value.hint is not None and "to on or off" in caught.value.hint


#: The settings whose defaults are prod's in prod and the development ones everywhere else.
PER_ENVIRONMENT = {
    "PREFECT_JULIA_CODE_SOURCE": ("worktree", "tree"),
    "PREFECT_JULIA_SCHEDULES": ("active", "paused"),
    "PREFECT_JULIA_FLOW_START": ("spawn", "fork"),
    "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": ("2", "0.25"),
    "PREFECT_WORKER_QUERY_SECONDS": ("5", "0.5"),
}


def test_per_environment_defaults_single_out_prod_only() -> None:
    derive = per_environment(prod="p", other="o")
    assert [derive(env, {}) for env in ("prod", "dev", "staging", "feature-a")] == ["p", "o", "o", "o"]


@pytest.mark.parametrize(
    ("env", "base", "is_prod"),
    [
        ("prod", None, True),
        ("dev", None, False),
        ("staging", None, False),  # declared only by its envs/ file
        ("feature-a", "dev", False),
        ("hotfix-x", "prod", False),  # a branch environment based on prod is still not prod
    ],
)
def test_prod_gets_production_defaults_and_every_other_environment_the_development_ones(
    env: str, base: str | None, is_prod: bool
) -> None:
    based = (base, {}, {}) if base is not None else None
    resolved = resolve(env, committed={}, local={}, process={}, base=based, recorded={} if based else None)
    shown = {name: resolved[name].value for name in PER_ENVIRONMENT}
    assert shown == {name: pair[0 if is_prod else 1] for name, pair in PER_ENVIRONMENT.items()}
    assert all(resolved[name].source is Source.DEFAULT for name in PER_ENVIRONMENT)
