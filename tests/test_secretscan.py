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


# Each built at run time, so this file never holds one.
AWS_PAIR = (
    "aws_access_key_id = " + "AKIA" + "Q2W3E4R5T6Y7U8I9" + "\naws_secret_access_key = " + "k7Rz/" + "Qm3x" * 8 + "Ab+"
)
DSN = "DATABASE_URL = 'postgresql://app:" + "Tr0ub4dor-3@db.example:5432/app'"
PRIVATE = "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (AWS_PAIR, "AWS access key pair"),
        (DSN, "URL with a password"),
        (PRIVATE, "private key"),
        (f"key: {FAKE_USER_KEY}", "Prefect API key"),
        (f"key: {FAKE_BOT_KEY}", "Prefect API key"),
        (f"shout = '{SECRET_VALUE.upper()}'", "holds the value of PREFECT_JULIA_DB_PASSWORD"),
    ],
)
def test_each_kind_of_credential_is_refused(project: Path, text: str, reason: str) -> None:
    findings = scan_text(text, load_local_secrets(project), "leak.txt")
    assert any(reason in str(f) for f in findings), findings


def test_placeholders_and_plain_urls_pass() -> None:
    text = "url = 'postgresql://app:${DB_PASSWORD}@db/app'\nsee https://example.invalid/x?y=1\nuser:password@host\n"
    assert scan_text(text, []) == []


def _git(root: Path, *args: str) -> str:
    author = ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"]
    return subprocess.run(["git", *author, *args], cwd=root, check=True, capture_output=True, text=True).stdout


def test_pushed_commits_are_scanned_even_when_a_later_commit_removes_the_secret(project: Path) -> None:
    _git(project, "init", "-q", "-b", "main")
    _git(project, "commit", "-q", "--allow-empty", "-m", "base")
    base = _git(project, "rev-parse", "HEAD").strip()
    (project / "conf.py").write_text(f"DSN = {DSN!r}\n")
    _git(project, "add", "conf.py")
    _git(project, "commit", "-q", "--no-verify", "-m", "leak")
    (project / "conf.py").write_text("DSN = None\n")
    _git(project, "commit", "-q", "-am", "hide it")
    script = Path(__file__).resolve().parents[1] / "src" / "prefect_julia" / "gates" / "secretscan.py"
    done = subprocess.run(
        [sys.executable, str(script), "--commits", f"{base}..HEAD"], cwd=project, capture_output=True, text=True
    )
    assert done.returncode == 1 and ":conf.py:1: holds a URL with a password" in done.stdout, done.stdout + done.stderr
    assert "Tr0ub4dor-3" not in done.stdout + done.stderr


@pytest.mark.parametrize("text", [AWS_PAIR, DSN, PRIVATE])
def test_detect_secrets_refuses_what_the_baseline_does_not_hold(tmp_path: Path, text: str) -> None:
    (tmp_path / "leak.txt").write_text(text + "\n")
    (tmp_path / "clean.txt").write_text("VALUE = 1\n")
    script = Path(__file__).resolve().parents[1] / "src" / "prefect_julia" / "gates" / "baseline_scan.py"
    clean = subprocess.run([sys.executable, str(script), "clean.txt"], cwd=tmp_path, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    leak = subprocess.run([sys.executable, str(script), "leak.txt"], cwd=tmp_path, capture_output=True, text=True)
    assert leak.returncode == 1 and "leak.txt" in leak.stdout, leak.stdout + leak.stderr


def test_the_repository_passes_its_own_baseline() -> None:
    root = Path(__file__).resolve().parents[1]
    files = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout.split()
    files = [f for f in files if f != ".secrets.baseline" and (root / f).is_file()]
    script = root / "src" / "prefect_julia" / "gates" / "baseline_scan.py"
    done = subprocess.run([sys.executable, str(script), *files], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _pem_body(lines: int = 4) -> str:
    """Lines of a PEM key's body, random at run time (64 base64 characters a line, a shorter last one)."""
    import base64
    import os

    data = base64.b64encode(os.urandom(48 * lines - 10)).decode()
    return "\n".join(data[i : i + 64] for i in range(0, len(data), 64))


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
        ("utf-32-le", b"\xff\xfe\0\0"),
        ("utf-32-be", b"\0\0\xfe\xff"),
    ],
)
def test_utf16_and_utf32_files_are_read_by_their_byte_order_mark(tmp_path: Path, encoding: str, bom: bytes) -> None:
    leak = tmp_path / "leak.txt"
    leak.write_bytes(bom + f"first line\nkey = '{FAKE_USER_KEY}'\n".encode(encoding))
    assert [(f.line, f.reason) for f in scan_file(leak, [])] == [
        (2, "looks like a Prefect API key (pnu_/pnb_ + 36 characters)")
    ]


def test_a_pem_body_without_its_armour_lines_is_refused_and_ordinary_columns_pass() -> None:
    text = f"key = '''\n{_pem_body()}\n'''\n"
    findings = scan_text(text, [], "key.py")
    assert [(f.line, f.reason) for f in findings] == [
        (2, "looks like the body of a private key (PEM lines without BEGIN/END)")
    ]
    two_lines = "\n".join(_pem_body().splitlines()[:2])
    digests = "\n".join(secrets_hex(64) for _ in range(5))  # hex digests: no capitals
    assert scan_text(f"{two_lines}\n", []) == [] and scan_text(digests, []) == []


def secrets_hex(width: int) -> str:
    import secrets

    return secrets.token_hex(width // 2)


def test_binary_blobs_of_pushed_commits_are_scanned(project: Path) -> None:
    _git(project, "init", "-q", "-b", "main")
    _git(project, "commit", "-q", "--allow-empty", "-m", "base")
    base = _git(project, "rev-parse", "HEAD").strip()
    (project / "model.bin").write_bytes(b"\0\1\2header\0" + f"token={FAKE_BOT_KEY}".encode() + b"\0\xff\xfe")
    (project / "notes.txt").write_bytes(b"\xff\xfe" + f"dsn {DSN}\n".encode("utf-16-le"))
    _git(project, "add", "model.bin", "notes.txt")
    _git(project, "commit", "-q", "--no-verify", "-m", "blobs")
    script = Path(__file__).resolve().parents[1] / "src" / "prefect_julia" / "gates" / "secretscan.py"
    done = subprocess.run(
        [sys.executable, str(script), "--commits", f"{base}..HEAD"], cwd=project, capture_output=True, text=True
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert ":model.bin:" in done.stdout and "Prefect API key" in done.stdout, done.stdout
    assert ":notes.txt:1: holds a URL with a password" in done.stdout, done.stdout
    assert FAKE_BOT_KEY not in done.stdout + done.stderr
