"""What the demo says about the local files it changes before anything starts (kit/run/demo.py).

The demo runs end to end in tests/test_pipeline.py; these tests call its first step on a kit copy, no server.
"""

from __future__ import annotations

import stat
from pathlib import Path

from conftest import make_kit_repo
from prefect_julia.kit.access.security import AUTH_STRING
from prefect_julia.kit.run.demo import TOKEN_SETTING, prepared_environment


def _kit(root: Path) -> Path:
    """A kit copy whose local files are already private (the copy writes them with the umask's mode)."""
    make_kit_repo(root, git=False, seed=False)
    for local in (root / "envs").glob("*.local.env"):
        local.chmod(0o600)
    return root


def _prepare(root: Path, env_name: str, auth: str = "off") -> tuple[list[str], str]:
    said: list[str] = []
    env = prepared_environment(root, {"PREFECT_JULIA_AUTH": auth}, env_name, said.append)
    return said, env.name


def test_the_demo_token_is_announced_once_and_not_shown(tmp_path: Path) -> None:
    root = _kit(tmp_path)
    local = root / "envs" / "dev.local.env"

    said, _ = _prepare(root, "dev")
    token = next(line for line in local.read_text().splitlines() if line.startswith(f"{TOKEN_SETTING}="))
    assert said == [f"note: wrote a random {TOKEN_SETTING} (the demo's secret block value) to envs/dev.local.env"]
    assert token.split("=", 1)[1] not in "".join(said)
    assert stat.S_IMODE(local.stat().st_mode) == 0o600

    again, _ = _prepare(root, "dev")  # the token is there now: nothing to say
    assert again == []


def test_a_readable_local_file_made_private_is_announced(tmp_path: Path) -> None:
    root = _kit(tmp_path)
    local = root / "envs" / "dev.local.env"
    local.write_text(local.read_text() + f"{TOKEN_SETTING}=already-there-123\n")
    local.chmod(0o644)

    said, _ = _prepare(root, "dev")
    assert said == [
        "note: envs/dev.local.env was readable by other users (mode 0644): made it 0600. "
        "Change secrets it held if they may have been read."
    ]
    assert stat.S_IMODE(local.stat().st_mode) == 0o600


def test_a_generated_auth_string_is_announced(tmp_path: Path) -> None:
    root = _kit(tmp_path)

    said, _ = _prepare(root, "prod", auth="on")
    written = (root / "envs" / "prod.local.env").read_text()
    assert f"{AUTH_STRING}=" in written
    assert said == [
        f"note: wrote a random {TOKEN_SETTING} (the demo's secret block value) to envs/prod.local.env",
        f"note: wrote a random {AUTH_STRING} (the server's login) to envs/prod.local.env",
    ]
