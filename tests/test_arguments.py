"""The command line: bare environment words, flags, and bad input, parsed against the real tasks (no server).

Also the contract with invoke that ``prefect_julia.cli.arguments`` builds on: when an invoke upgrade changes it,
these fail.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from importlib.metadata import version

import pytest
from invoke.exceptions import Exit, ParseError

from cli_parse import collection, parse, tasks_module
from harness import REPO_ROOT
from prefect_julia.cli import arguments


def _env_tasks() -> list[str]:
    coll = collection()
    return sorted(name for name in coll.task_names if "env" in inspect.signature(coll[name].body).parameters)


def test_the_contract_with_invoke_holds() -> None:
    assert version("invoke").startswith("3.0."), "cli/arguments.py is tested on invoke 3.0: check it, then the pin"
    assert arguments._contract_holds()
    tasks_module()
    assert arguments.install() is True
    assert getattr(type(collection()).to_contexts, "_prefect_julia", False)


def test_every_task_is_a_kit_task() -> None:
    coll = collection()
    plain = [name for name in coll.task_names if not isinstance(coll[name], arguments.KitTask)]
    assert not plain, f"tasks made with invoke's own @task (use prefect_julia.cli.arguments.task): {plain}"


def test_enough_tasks_take_an_environment() -> None:
    names = _env_tasks()
    expected = {"server-up", "server-down", "server-status", "worker-status", "deploy", "blocks", "status", "run"}
    assert expected <= set(names), expected - set(names)


@pytest.mark.parametrize("name", _env_tasks())
def test_every_task_takes_the_environment_three_ways(name: str) -> None:
    words = collection()[name].words
    leading = ["daily" if word == "deployment" else "backup.db" for word in words[: words.index("env")]]
    as_word = parse([name, *leading, "dev"])
    as_flag = parse([name, *leading, "--env", "dev"])
    as_short = parse([name, *leading, "-e", "dev"])
    left_out = parse([name, *leading])
    assert [p.task for p in as_word] == [name]
    assert as_word[0].kwargs["env"] == as_flag[0].kwargs["env"] == as_short[0].kwargs["env"] == "dev"
    assert left_out[0].kwargs["env"] == ""


def test_words_fill_the_deployment_then_the_environment() -> None:
    (run,) = parse(["run", "daily", "prod", "--param", "rundate=2026-11-21", "--param", "label=x"])
    assert (run.kwargs["deployment"], run.kwargs["env"]) == ("daily", "prod")
    assert run.kwargs["param"] == ["rundate=2026-11-21", "label=x"]
    (run,) = parse(["run", "daily", "--param", "a=1", "dev", "--timeout", "5"])
    assert (run.kwargs["env"], run.kwargs["timeout"]) == ("dev", 5.0)


def test_a_flag_value_is_never_taken_for_a_word() -> None:
    (backup,) = parse(["db-backup", "--file", "dev", "prod"])
    assert (backup.kwargs["file"], backup.kwargs["env"]) == ("dev", "prod")
    (backup,) = parse(["db-backup", "--file=backup.db"])
    assert (backup.kwargs["file"], backup.kwargs["env"]) == ("backup.db", "")


def test_flags_after_the_word() -> None:
    (down,) = parse(["worker-down", "dev", "--cancel"])
    assert down.kwargs["env"] == "dev" and down.kwargs["cancel"] is True
    (shell,) = parse(["env", "--shell", "prod"])
    assert shell.kwargs["env"] == "prod" and shell.kwargs["shell"] is True


def test_tasks_still_chain() -> None:
    assert [p.task for p in parse(["server-up", "worker-up"])] == ["server-up", "worker-up"]
    parsed = parse(["server-up", "dev", "worker-up", "dev"])
    assert [(p.task, p.kwargs["env"]) for p in parsed] == [("server-up", "dev"), ("worker-up", "dev")]


def test_invokes_own_flags_still_work_after_a_task() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "invoke", "server-up", "dev", "--help"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert shown.returncode == 0 and "Usage: " in shown.stdout and "--env" in shown.stdout, shown.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["deploy", "dev", "--env", "prod"], "--env is given twice: dev and --env prod"),
        (["deploy", "--env", "dev", "--env", "prod"], "--env is given twice"),
        (["deploy", "--env", "dev", "prod"], "--env is given twice: --env dev and prod"),
        (["gate", "dev"], "`invoke gate` takes no word 'dev'"),
        (["server-logs", "dev", "--lines", "abc"], "--lines expects a whole number, not 'abc'"),
        (["run", "daily", "--timeout=soon"], "--timeout expects a number"),
        (["server-up", "--bogus"], "`invoke server-up` has no option --bogus"),
    ],
)
def test_bad_input_exits_2_with_a_fix(argv: list[str], message: str) -> None:
    with pytest.raises(Exit) as refused:
        parse(argv)
    assert refused.value.code == 2
    assert message in str(refused.value.message) and "\n  fix: " in str(refused.value.message)


def test_the_same_environment_twice_is_no_conflict() -> None:
    (deploy,) = parse(["deploy", "dev", "--env", "dev"])
    assert deploy.kwargs["env"] == "dev"


def test_an_unknown_task_is_invokes_own_error() -> None:
    with pytest.raises(ParseError, match="No idea what 'serve-up' is"):
        parse(["serve-up"])
