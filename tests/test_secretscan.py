"""The secret scan: Prefect API keys and the secret values of the local settings files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from prefect_julia.gates.secretscan import API_KEY, load_local_secrets, main, scan_file, scan_text

# Built at run time so this file itself never holds something that looks like a key.
FAKE_USER_KEY = "pnu_" + "Ab3" * 12
FAKE_BOT_KEY = "pnb_" + "9z" * 18
SECRET_VALUE = "hunter2-but-longer"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    envs = tmp_path / "envs"
    envs.mkdir()
    (envs / "dev.local.env").write_text(
        f"# local only\nPREFECT_JULIA_DB_PASSWORD={SECRET_VALUE}\nPREFECT_JULIA_PORT=4310\n"
        "GITHUB_TOKEN='tok-123456'\nEMPTY_SECRET=\nSHORT_KEY=abc\n"
    )
    (envs / "dev.env").write_text("NOT_LOCAL_SECRET=committed-default-value\n")
    return tmp_path


def test_api_key_pattern() -> None:
    assert API_KEY.search(f"key = '{FAKE_USER_KEY}'") and API_KEY.search(FAKE_BOT_KEY)
    assert not API_KEY.search("pnu_" + "a" * 35)  # too short
    assert not API_KEY.search("pnu_" + "a" * 37)  # too long
    assert not API_KEY.search("xpnu_" + "a" * 36)  # part of a longer word
    assert not API_KEY.search("pnx_" + "a" * 36)


def test_local_secrets_are_the_secret_like_names_of_local_files_only(project: Path) -> None:
    secrets = load_local_secrets(project)
    assert [(s.name, s.source) for s in secrets] == [
        ("PREFECT_JULIA_DB_PASSWORD", "envs/dev.local.env"),
        ("GITHUB_TOKEN", "envs/dev.local.env"),
    ]
    assert secrets[1].value == "tok-123456"  # quotes removed by python-dotenv


def test_scan_text_reports_line_and_rule_never_the_value(project: Path) -> None:
    secrets = load_local_secrets(project)
    text = f"ok\nurl = 'http://x'\napi = '{FAKE_USER_KEY}'\npassword = '{SECRET_VALUE}'\n"
    findings = scan_text(text, secrets, "flows/conf.py")
    assert [str(f) for f in findings] == [
        "flows/conf.py:3: looks like a Prefect API key (pnu_/pnb_ + 36 characters)",
        "flows/conf.py:4: holds the value of PREFECT_JULIA_DB_PASSWORD from envs/dev.local.env",
    ]
    assert all(SECRET_VALUE not in str(f) and FAKE_USER_KEY not in str(f) for f in findings)


def test_binary_and_missing_files_are_skipped(tmp_path: Path) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\0\1" + FAKE_USER_KEY.encode())
    assert scan_file(blob, []) == []
    assert scan_file(tmp_path / "gone.txt", []) == []


def test_main_exit_codes_and_messages(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project)
    (project / "clean.py").write_text("VALUE = 1\n")
    (project / "leak.md").write_text(f"token: {FAKE_BOT_KEY}\n")
    assert main(["clean.py"]) == 0
    assert main(["clean.py", "leak.md"]) == 1
    captured = capsys.readouterr()
    assert "leak.md:1: looks like a Prefect API key" in captured.out
    assert "Refused" in captured.err and "envs/*.local.env" in captured.err
    assert FAKE_BOT_KEY not in captured.out + captured.err


def test_runs_as_a_plain_script_and_as_the_console_script(project: Path) -> None:
    (project / "leak.txt").write_text(f"x={SECRET_VALUE}\n")
    script = Path(__file__).resolve().parents[1] / "src" / "prefect_julia" / "gates" / "secretscan.py"
    as_script = subprocess.run([sys.executable, str(script), "leak.txt"], cwd=project, capture_output=True, text=True)
    assert as_script.returncode == 1 and "leak.txt:1: holds the value of PREFECT_JULIA_DB_PASSWORD" in as_script.stdout
    console = Path(sys.executable).parent / "prefect-julia-secretscan"
    as_console = subprocess.run([str(console), "leak.txt"], cwd=project, capture_output=True, text=True)
    assert as_console.returncode == 1 and SECRET_VALUE not in as_console.stdout + as_console.stderr
