"""Blocks and variables as code, applied to a real Prefect server."""

from __future__ import annotations

import json
import urllib.request
import uuid

import pytest

from conftest import KitRepo, RunningServer, make_kit_repo
from prefect_julia.core.errors import ConfigError, ServerError
from prefect_julia.kit.declarations import blocks
from prefect_julia.kit.environment.environments import resolve_environment


@pytest.fixture
def repo(tmp_path) -> KitRepo:
    return make_kit_repo(tmp_path / "repo", project=True)


def _get(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def _write_decl(repo: KitRepo, suffix: str, min_rows: int = 10) -> None:
    (repo.root / "envs" / "dev.blocks.toml").write_text(
        f"""
[[blocks]]
type = "local-file-system"
name = "data-{suffix}"
fields = {{ basepath = "{{data_root}}/{{env}}" }}

[[blocks]]
type = "secret"
name = "token-{suffix}"
secret_from = "TEST_TOKEN"

[variables]
env_{suffix} = "{{env}}"
rows_{suffix} = {min_rows}
"""
    )


def test_apply_creates_then_is_idempotent_then_updates(repo: KitRepo, prefect_server: RunningServer) -> None:
    suffix = uuid.uuid4().hex[:8]
    _write_decl(repo, suffix)
    env = resolve_environment("dev", repo.root, {"PREFECT_API_URL": prefect_server.api_url, "TEST_TOKEN": "s3cret"})
    first = blocks.apply(blocks.load(repo.root, "dev"), env)
    assert sorted(first.created) == sorted(
        [
            f"block local-file-system/data-{suffix}",
            f"block secret/token-{suffix}",
            f"variable env_{suffix}",
            f"variable rows_{suffix}",
        ]
    )
    doc = _get(f"{prefect_server.api_url}/block_types/slug/local-file-system/block_documents/name/data-{suffix}")
    assert doc is not None and doc["data"]["basepath"] == f"{env.data_root}/dev"
    secret = _get(
        f"{prefect_server.api_url}/block_types/slug/secret/block_documents/name/token-{suffix}?include_secrets=true"
    )
    assert secret is not None and secret["data"]["value"] == "s3cret"
    variable = _get(f"{prefect_server.api_url}/variables/name/rows_{suffix}")
    assert variable is not None and variable["value"] == 10

    second = blocks.apply(blocks.load(repo.root, "dev"), env)
    assert second.created == [] and second.updated == [] and len(second.unchanged) == 4

    _write_decl(repo, suffix, min_rows=20)
    env = resolve_environment("dev", repo.root, {"PREFECT_API_URL": prefect_server.api_url, "TEST_TOKEN": "rotated"})
    third = blocks.apply(blocks.load(repo.root, "dev"), env)
    assert sorted(third.updated) == [f"block secret/token-{suffix}", f"variable rows_{suffix}"]


def test_missing_secret_changes_nothing(repo: KitRepo, prefect_server: RunningServer) -> None:
    suffix = uuid.uuid4().hex[:8]
    _write_decl(repo, suffix)
    env = resolve_environment("dev", repo.root, {"PREFECT_API_URL": prefect_server.api_url})
    with pytest.raises(
        ConfigError, match=f"Secret value not set for: secret/token-{suffix} \\(from TEST_TOKEN\\)"
    ) as error:
        blocks.apply(blocks.load(repo.root, "dev"), env)
    assert "envs/dev.local.env" in str(error.value)
    assert (
        _get(f"{prefect_server.api_url}/block_types/slug/local-file-system/block_documents/name/data-{suffix}") is None
    )


def test_secret_value_in_a_committed_file_is_refused(repo: KitRepo) -> None:
    (repo.root / "envs" / "dev.blocks.toml").write_text(
        '[[blocks]]\ntype = "secret"\nname = "x"\nfields = { value = "leak" }\n'
    )
    with pytest.raises(ConfigError, match="has its value in a committed file") as error:
        blocks.load(repo.root, "dev")
    assert "leak" not in str(error.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[blocks]]\ntype = "gcs-bucket"\nname = "x"\n', "is not one the kit can declare"),
        (
            '[[blocks]]\ntype = "s3-bucket"\nname = "x"\nfields = { bucket_name = "b", credentials = "secret/y" }\n',
            'must name a declared block as "aws-credentials/NAME"',
        ),
        ('[[blocks]]\ntype = "aws-credentials"\nname = "x"\n', "needs secret_from"),
        ('[[blocks]]\ntype = "local-file-system"\nname = "a b"\n', "is not valid"),
        (
            '[[blocks]]\ntype = "local-file-system"\nname = "x"\nfields = { basepath = "{nope}" }\n',
            "unknown placeholder",
        ),
        ("[[blocks]\n", "not valid TOML"),
    ],
)
def test_check_reports_bad_declarations_without_a_server(repo: KitRepo, text: str, message: str) -> None:
    (repo.root / "envs" / "prod.blocks.toml").write_text(text)
    problems = blocks.check(repo.root, ("dev", "prod"))
    assert len(problems) == 1 and message in problems[0]


def test_server_down_names_the_command(repo: KitRepo) -> None:
    env = resolve_environment("dev", repo.root, {"DEMO_API_TOKEN": "x"})
    with pytest.raises(ServerError, match="invoke server-up dev"):
        blocks.apply(blocks.load(repo.root, "dev"), env)
