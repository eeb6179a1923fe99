"""Deployments as code against a real Prefect server (no worker needed to apply them)."""

from __future__ import annotations

import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import KitRepo, RunningServer, free_port, make_kit_repo
from harness import api
from prefect_julia.core.errors import ConfigError, ServerError
from prefect_julia.kit.declarations import deployments
from prefect_julia.kit.environment.environments import resolve_environment

FLOW = """
from prefect import flow

@flow(name="{flow_name}")
def hello(who: str, times: int = 1) -> str:
    return f"hello {{who}}" * times
"""


def _repo(tmp_path: Path, flow_name: str, decl: str) -> KitRepo:
    repo = make_kit_repo(tmp_path / "repo")
    (repo.root / "flows").mkdir()
    (repo.root / "flows" / "hello.py").write_text(FLOW.format(flow_name=flow_name))
    _declare(repo, decl)
    return repo


def _declare(repo: KitRepo, *entries: str) -> None:
    (repo.root / "prefect.yaml").write_text("deployments:\n" + "".join(entries))


def _decl(name: str, cron: str | None = "0 6 * * *", params: str = "who: world", extra: str = "") -> str:
    text = (
        f"  - name: {name}\n    entrypoint: flows/hello.py:hello\n    tags: [t]\n"
        f"    parameters: {{ {params} }}\n    work_pool:\n      name: '{{{{ $PREFECT_JULIA_WORK_POOL }}}}'\n"
    )
    if cron:
        text += f'    schedules:\n      - cron: "{cron}"\n'
    return text + extra


def _deployments(server: RunningServer, flow_name: str) -> dict[str, dict]:
    found = api(server.api_url, "POST", "/deployments/filter", {"flows": {"name": {"any_": [flow_name]}}})
    return {d["name"]: d for d in found}


def test_apply_is_idempotent_replaces_schedules_and_removes_undeclared(
    tmp_path: Path, prefect_server: RunningServer
) -> None:
    flow_name = f"hello-{uuid.uuid4().hex[:8]}"
    pool = f"pool-{uuid.uuid4().hex[:8]}"
    repo = _repo(
        tmp_path, flow_name, _decl("a") + _decl("b", cron=None) + _decl("p", extra="    environments: [prod]\n")
    )
    env = resolve_environment(
        "dev", repo.root, {"PREFECT_API_URL": prefect_server.api_url, "PREFECT_JULIA_WORK_POOL": pool}
    )

    first = deployments.apply(repo.root, env)
    assert first.work_pool_created and sorted(first.applied) == [f"{flow_name}/a", f"{flow_name}/b"]
    on_server = _deployments(prefect_server, flow_name)
    assert set(on_server) == {"a", "b"}  # not p: declared for prod only
    assert on_server["a"]["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(repo.root)}}
    ]
    assert on_server["a"]["work_pool_name"] == pool
    assert set(on_server["a"]["tags"]) == {"prefect-julia", "t"}
    assert on_server["a"]["parameters"] == {"who": "world"}
    assert [s["schedule"]["cron"] for s in on_server["a"]["schedules"]] == ["0 6 * * *"]

    _declare(repo, _decl("a", cron="30 7 * * 1"))
    second = deployments.apply(repo.root, env)
    assert not second.work_pool_created and second.removed == ["b"]
    on_server = _deployments(prefect_server, flow_name)
    assert set(on_server) == {"a"}
    assert [s["schedule"]["cron"] for s in on_server["a"]["schedules"]] == ["30 7 * * 1"]

    deployments.apply(repo.root, env)  # again: still exactly one schedule
    assert len(_deployments(prefect_server, flow_name)["a"]["schedules"]) == 1

    _declare(repo, _decl("a", cron=None))
    deployments.apply(repo.root, env)
    assert _deployments(prefect_server, flow_name)["a"]["schedules"] == []


@pytest.mark.parametrize(
    ("decl", "problem"),
    [
        (_decl("x", cron="61 * * * *"), "schedule '61 * * * *' is invalid"),
        (_decl("x", params="who: w, whom: w"), "parameter 'whom' is not a parameter"),
        (_decl("x", params="times: 2"), "required parameter 'who' has no value"),
        (_decl("x", extra="    shedules: []\n"), "unknown key 'shedules'"),
        (_decl("x", extra="    triggers: []\n"), "does not apply the key 'triggers'"),
        (_decl("x", extra="    environments: [staging]\n"), "unknown environment 'staging'"),
        (_decl("x").replace("$PREFECT_JULIA_WORK_POOL", "$NO_SUCH_SETTING"), "names no setting of the kit"),
        (_decl("x").replace("hello.py:hello", "hello.py:nope"), "cannot load the flow"),
        (_decl("x").replace("flows/hello.py", "flows/missing.py"), "does not exist"),
        (_decl("x").replace("flows/hello.py:hello", "flows/hello.py"), "must read 'path/to/file.py:flow_function'"),
    ],
)
def test_check_finds_bad_declarations_without_a_server(tmp_path: Path, decl: str, problem: str) -> None:
    repo = _repo(tmp_path, "hello-check", decl)
    problems = deployments.check(repo.root)
    assert len(problems) == 1 and problem in problems[0], problems


def test_apply_refuses_bad_declarations_before_touching_the_server(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "hello-bad", _decl("x", cron="not a cron"))
    env = resolve_environment("dev", repo.root, {"PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"})
    with pytest.raises(ConfigError, match="nothing was deployed"):
        deployments.apply(repo.root, env)


def test_deploy_with_the_server_down_names_server_up(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "hello-down", _decl("x"))
    run = repo.invoke("deploy", "--env", "dev")
    assert run.returncode == ServerError.exit_code
    assert "invoke server-up dev" in run.stderr


def test_prefect_deploy_all_reads_the_same_file(tmp_path: Path, prefect_server: RunningServer) -> None:
    """Prefect's own CLI, in a shell set up by `invoke env --shell --env dev`, deploys prefect.yaml too."""
    flow_name = f"hello-{uuid.uuid4().hex[:8]}"
    pool = f"pool-{uuid.uuid4().hex[:8]}"
    repo = _repo(tmp_path, flow_name, _decl("cli"))
    pull = "pull:\n  - prefect.deployments.steps.set_working_directory:\n      directory: '{{ $PREFECT_JULIA_CODE_DIR }}'\n"
    (repo.root / "prefect.yaml").write_text(pull + (repo.root / "prefect.yaml").read_text())
    api(
        prefect_server.api_url, "POST", "/work_pools/", {"name": pool, "type": "process"}, patience=0
    )  # a create: asked once
    python = shlex.quote(sys.executable)
    script = f'eval "$({python} -m invoke env --shell --env dev)" && {python} -m prefect --no-prompt deploy --all'
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=repo.root,
        env=repo.environ(PREFECT_API_URL=prefect_server.api_url, PREFECT_JULIA_WORK_POOL=pool),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    deployed = _deployments(prefect_server, flow_name)["cli"]
    assert deployed["work_pool_name"] == pool
    assert deployed["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(repo.root)}}
    ]
