"""New sqlite homes start from the kit's migrated empty database: built once per Prefect version with Prefect's
own migration, copied 0600, refused when it does not match (the server then migrates as usual)."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

import harness
from conftest import make_kit_repo
from prefect_julia.kit.server import template


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A template built by the kit in a cache folder of its own (one real migration, about 15 s here)."""
    cache = tmp_path_factory.mktemp("cache")
    return template.ensure({**os.environ, "XDG_CACHE_HOME": str(cache)})


def _copy(source: Path, folder: Path) -> Path:
    folder.mkdir(mode=0o700)
    copy = folder / "prefect.db"
    copy.write_bytes(source.read_bytes())
    return copy


def test_the_template_is_migrated_private_and_keyed_by_the_prefect_version(built: Path) -> None:
    assert built.parent.name == f"prefect-{template.prefect_version()}"
    assert built.parent.parent.name == "templates"
    assert _mode(built) == 0o600 and _mode(built.parent) == 0o700
    assert template.expected_revision() is not None
    assert template.revision_of(built) == template.expected_revision()
    assert not built.with_name("prefect.db-wal").exists()  # self-contained: one file is the whole database


def test_a_new_home_gets_a_private_copy_and_an_existing_database_is_left_alone(built: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    assert template.seed(home / "prefect.db", {}, template=built) is None
    assert (home / "prefect.db").read_bytes() == built.read_bytes()
    assert _mode(home / "prefect.db") == 0o600

    (home / "prefect.db").write_bytes(b"the home's own data")
    assert template.seed(home / "prefect.db", {}, template=built) is None
    assert (home / "prefect.db").read_bytes() == b"the home's own data"


def test_a_template_at_another_migration_is_not_used_and_is_removed(built: Path, tmp_path: Path) -> None:
    stale = _copy(built, tmp_path / "stale")
    with sqlite3.connect(stale) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'f416ea180ae0'")
    home = tmp_path / "home"
    home.mkdir()
    note = template.seed(home / "prefect.db", {}, template=stale)
    assert note is not None and "expects" in note and str(template.expected_revision()) in note
    assert not (home / "prefect.db").exists()  # the server migrates its own
    assert not stale.exists()  # the next new home builds a fresh one


def test_a_damaged_template_or_one_holding_a_key_is_not_used(built: Path, tmp_path: Path) -> None:
    damaged = _copy(built, tmp_path / "damaged")
    damaged.write_bytes(damaged.read_bytes()[:4096] + b"\0" * 8192)
    keyed = _copy(built, tmp_path / "keyed")
    with sqlite3.connect(keyed) as connection:
        connection.execute(
            "INSERT INTO configuration (id, key, value) VALUES ('a', 'ENCRYPTION_KEY', '{\"fernet_key\": \"k\"}')"
        )
    for bad, reason in ((damaged, ""), (keyed, "encryption key")):
        home = tmp_path / f"home-{bad.parent.name}"
        home.mkdir()
        note = template.seed(home / "prefect.db", {}, template=bad)
        assert note is not None and reason in note, note
        assert not (home / "prefect.db").exists()


def test_server_up_on_a_new_home_starts_from_the_template_or_else_migrates(tmp_path: Path) -> None:
    repo = make_kit_repo(tmp_path / "repo", seed=False)  # empty homes: server-up seeds them
    dev, prod = repo.environment("dev"), repo.environment("prod")
    patient = {"PREFECT_JULIA_HEALTH_TIMEOUT": "600"}  # a loaded machine
    damaged_cache = tmp_path / "damaged-cache"
    damaged = damaged_cache / "prefect-julia" / "templates" / f"prefect-{template.prefect_version()}" / "prefect.db"
    for folder in reversed(damaged.parents[:4]):  # private folders, as the kit makes them
        folder.mkdir(mode=0o700)
    damaged.write_bytes(b"not a database")
    try:
        done = repo.invoke("server-up", "dev", check=True, timeout=900, **patient)
        assert "without the migrated database template" not in done.stdout, done.stdout
        assert _mode(dev.files.database) == 0o600
        harness.kit_api(dev, "POST", "/flows/filter", {"limit": 1})  # it serves the copied database
        repo.invoke("server-down", "dev", check=True, timeout=120)

        done = repo.invoke("server-up", "prod", check=True, timeout=900, XDG_CACHE_HOME=str(damaged_cache), **patient)
        assert "without the migrated database template" in done.stdout, done.stdout
        assert "not a migrated Prefect database" in done.stdout, done.stdout
        assert not damaged.exists()  # the next new home builds a fresh one
        assert template.revision_of(prod.files.database) == template.expected_revision()  # the server migrated
    finally:
        repo.invoke("server-down", "dev", timeout=120)
        repo.invoke("server-down", "prod", timeout=120)
