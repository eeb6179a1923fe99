from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import KitRepo
from prefect_julia.core.errors import ConfigError
from prefect_julia.kit.environment import profiles
from prefect_julia.kit.environment.environments import PROFILES_FILE, all_environments


def _sync(repo: KitRepo) -> profiles.SyncReport:
    return profiles.sync(repo.root / PROFILES_FILE, all_environments(repo.root, {}), active="dev")


def test_creates_one_profile_per_environment_with_mode_0600(kit_repo: KitRepo) -> None:
    report = _sync(kit_repo)
    assert report.created == ["dev", "prod"] and report.written
    path = kit_repo.root / PROFILES_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    doc = profiles.load(path)
    assert doc["active"] == "dev"
    assert doc["profiles"]["prod"]["PREFECT_SERVER_API_PORT"] == str(kit_repo.ports["prod"])
    assert doc["profiles"]["dev"]["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert _sync(kit_repo).written is False  # nothing changed: file not rewritten


def test_keeps_what_a_person_added_and_updates_the_kits_keys(kit_repo: KitRepo) -> None:
    path = kit_repo.root / PROFILES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        '# my own note\nactive = "mine"\n\n'
        '[profiles.mine]\nPREFECT_API_URL = "http://elsewhere:1/api"  # keep me\n\n'
        '[profiles.dev]\n# dev note\nPREFECT_API_URL = "http://old:1/api"\nPREFECT_LOGGING_LEVEL = "DEBUG"\n'
    )
    report = _sync(kit_repo)
    assert report.updated == ["dev"] and report.created == ["prod"]
    text = path.read_text()
    for kept in (
        "# my own note",
        'active = "mine"',
        "[profiles.mine]",
        "# keep me",
        "# dev note",
        'PREFECT_LOGGING_LEVEL = "DEBUG"',
    ):
        assert kept in text
    assert f"http://127.0.0.1:{kit_repo.ports['dev']}/api" in text
    assert "http://old:1/api" not in text


def test_malformed_file_reports_line_and_column_and_is_untouched(kit_repo: KitRepo) -> None:
    path = kit_repo.root / PROFILES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    original = b'active = "dev"\n[profiles.dev\nPREFECT_API_URL = 1\n'
    path.write_bytes(original)
    with pytest.raises(ConfigError, match=r"line 2, column \d+") as error:
        _sync(kit_repo)
    assert "left untouched" in str(error.value)
    assert path.read_bytes() == original


def test_the_prefect_cli_reads_the_profile(kit_repo: KitRepo) -> None:
    _sync(kit_repo)
    env = kit_repo.environ(PREFECT_PROFILES_PATH=str(kit_repo.root / PROFILES_FILE))
    out = subprocess.run(
        [sys.executable, "-m", "prefect", "--profile", "dev", "config", "view"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=kit_repo.root,
    ).stdout
    assert f"PREFECT_API_URL='http://127.0.0.1:{kit_repo.ports['dev']}/api' (from profile)" in out
    assert f"PREFECT_HOME='{Path(kit_repo.root, '.prefect', 'dev')}' (from profile)" in out
