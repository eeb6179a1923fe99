"""Server identity: a second checkout configured with the first one's port is refused, naming the owner."""

from __future__ import annotations

from pathlib import Path

from conftest import KitRepo, make_kit_repo
from harness import kit_api
from prefect_julia.core.errors import ServerError
from prefect_julia.kit.access import identity
from prefect_julia.kit.environment.environments import Environment, resolve_environment

FLOW = 'from prefect import flow\n\n@flow(name="ident")\ndef ident() -> None:\n    pass\n'
DECLARATION = "deployments:\n  - name: b-only\n    entrypoint: flows/ident.py:ident\n"


def _deployment_names(env: Environment) -> list[str]:
    """The server's deployments, asked through the kit's REST client (it sends the auth string and CSRF token)."""
    return [d["name"] for d in kit_api(env, "POST", "/deployments/filter", {})]


def test_a_server_of_another_checkout_is_refused_and_shown_as_taken(tmp_path: Path) -> None:
    first = make_kit_repo(tmp_path / "first")
    second: KitRepo = make_kit_repo(tmp_path / "second")
    port = first.ports["dev"]
    (second.root / "envs" / "dev.local.env").write_text(f"PREFECT_JULIA_PORT={port}\n")
    (second.root / "flows").mkdir()
    (second.root / "flows" / "ident.py").write_text(FLOW)
    (second.root / "prefect.yaml").write_text(DECLARATION)
    env = first.environment("dev")
    try:
        first.invoke("server-up", "--env", "dev", check=True, timeout=300)
        mine = identity.read(env.home)
        assert mine is not None and mine.checkout == str(first.root) and mine.environment == "dev"
        again = first.invoke("server-up", "--env", "dev", check=True)
        assert "already up" in again.stdout

        status = second.invoke("server-status", check=True)
        row = next(line for line in status.stdout.splitlines() if line.startswith("dev "))
        assert f"taken by {first.root}" in row and "healthy" not in row, status.stdout
        own = first.invoke("server-status", check=True)
        assert "healthy" in next(line for line in own.stdout.splitlines() if line.startswith("dev "))

        for task in (
            ("deploy", "--env", "dev"),
            ("server-up", "--env", "dev"),
            ("worker-up", "--env", "dev"),
            ("run", "b-only"),
        ):
            refused = second.invoke(*task)
            assert refused.returncode == ServerError.exit_code, (task, refused.stdout, refused.stderr)
            assert f"the dev environment of {first.root}" in refused.stderr, refused.stderr
            assert "fix: " in refused.stderr and "PREFECT_JULIA_PORT" in refused.stderr
            assert "Traceback" not in refused.stderr
        assert "b-only" not in _deployment_names(env)  # nothing was written
        assert not (second.root / ".prefect" / "dev" / "worker.pid").exists()
    finally:
        first.invoke("server-down", "--env", "dev", timeout=120)


def test_a_remote_api_url_is_not_checked(kit_repo: KitRepo) -> None:
    assert identity.is_local(kit_repo.environment("dev"))
    remote = resolve_environment("dev", kit_repo.root, kit_repo.environ(PREFECT_API_URL="https://prefect.example/api"))
    assert not identity.is_local(remote) and identity.owner(remote) is None
    identity.check(remote)  # no local home to compare: not refused
