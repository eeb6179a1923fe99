"""Multi-line secrets are masked line by line as well as whole; the server's secrets are all read (every page,
JSON values, AWS keys); the kit's errors scrub what the Julia bridge learnt; a key file of a megabyte costs
time in proportion to the output, not to output times secret."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from harness import RunningServer, api
from prefect_julia.core.errors import CommandFailed
from prefect_julia.core.prefect_http import ApiClient
from prefect_julia.core.redact import scrub
from prefect_julia.core.secrets import MASK, Masker, redact, secret_lines, secret_values
from prefect_julia.runtime.bridge import find_julia
from prefect_julia.runtime.secrets import Scrubber, scrubber_for, server_secrets

BODY = [
    "AbCdEfGhAbCdEfGhAbCdEfGhAbCdEfGhAbCdEfGhAbCdEfGhAbCdEfGhLine0001",
    "AbCdEfGhAbCdEfGhAbCdEfGhAbCdEfGhAbCdEfGhAbCdEfGhAbCdEfGhLine0002",
    "AbCdEfGhAbCdEfGhAbCdEfGhAbCdEfGhTail03==",
    "zQ",
]


def pem(body: list[str] = BODY) -> str:
    return "\n".join(["-----BEGIN EXAMPLE KEY-----", *body, "-----END EXAMPLE KEY-----"])


def test_the_body_lines_of_a_pem_are_secrets_and_its_armour_and_short_lines_are_not() -> None:
    assert secret_lines(pem()) == BODY[:3]
    assert secret_lines("one-line-secret-value") == []
    assert secret_lines("  indented-line-1\r\n\tindented-line-2\r\n") == ["indented-line-1", "indented-line-2"]


@pytest.mark.parametrize("indexed", [False, True], ids=["few", "indexed"])
def test_each_line_is_masked_wherever_it_appears_and_the_rest_is_kept(indexed: bool) -> None:
    values = [pem(), "plain-token-1234"]
    # past FEW texts the masker indexes them: the same answers through the other path
    padding = [f"padding-secret-{i:04d}" for i in range(Masker.FEW + 1)] if indexed else []
    mask = Masker([*values, *padding])
    assert bool(mask._plan[1]) is indexed
    text = "\n".join([f"line: {BODY[0]}", f"│ {BODY[1]} and more", BODY[2], "zQ", "-----END EXAMPLE KEY-----"])
    assert mask(text) == "\n".join(
        ["line: ********", "│ ******** and more", "********", "zQ", "-----END EXAMPLE KEY-----"]
    )
    assert mask(f"[{pem()}]") == "[********]"
    assert mask("token plain-token-1234!") == "token ********!"
    assert mask("nothing secret here, just words") == "nothing secret here, just words"


def test_the_scrubber_masks_json_escaped_lines_and_remembers_its_values_for_the_kits_errors() -> None:
    body = [secrets.token_urlsafe(48) for _ in range(3)]
    key = pem(body)
    scrubber = Scrubber([key])
    record = json.dumps({"level": "INFO", "message": f"key is {key}"})
    assert not any(line in scrubber(record) for line in body)
    assert scrubber(f"ERROR: LoadError: {body[1]}") == "ERROR: LoadError: ********"
    # The failure of a job joins its stderr lines into one tail; the error scrubs it with what the bridge knew.
    failed = CommandFailed(f"job failed: {body[0]}", stderr_tail="\n".join(["ERROR: boom", *body]))
    assert not any(line in str(failed) for line in body), str(failed)


def test_a_secret_of_short_lines_is_caught_when_the_text_is_scrubbed_whole() -> None:
    environ = {"SHORT_LINES_TOKEN": "ab1\ncd2\nef3"}
    assert secret_lines(environ["SHORT_LINES_TOKEN"]) == []
    assert scrub("tail:\nab1\ncd2\nef3\nend", environ) == f"tail:\n{MASK}\nend"


def test_values_passed_to_julia_jobs_are_secret_whatever_their_names() -> None:
    environ = {"PREFECT_JULIA_PASS_ENV": "SERVICE_DSN, OTHER", "SERVICE_DSN": "host=db user=app pw=xyz123"}
    assert "host=db user=app pw=xyz123" in secret_values(environ)
    assert scrub("dsn host=db user=app pw=xyz123", environ) == f"dsn {MASK}"
    assert redact("dsn host=db user=app pw=xyz123", secret_values(environ)) == f"dsn {MASK}"


def _save_blocks(api_url: str, slug: str, saves: list[tuple[str, dict[str, object]]]) -> None:
    """Create block documents of type ``slug`` (name, data) through the server's REST API."""
    kind = api(api_url, "GET", f"/block_types/slug/{slug}")
    schema = api(api_url, "POST", "/block_schemas/filter", {"block_types": {"id": {"any_": [kind["id"]]}}})[0]
    for name, data in saves:
        body = {"name": name, "data": data, "block_schema_id": schema["id"], "block_type_id": kind["id"]}
        api(api_url, "POST", "/block_documents/", body)


@pytest.mark.server
def test_the_scrubber_reads_every_block_past_the_first_page(prefect_server: RunningServer) -> None:
    """A real server with more than 200 block documents; the secrets to find sort last."""
    from prefect.blocks.system import Secret
    from prefect_aws import AwsCredentials

    api_url = prefect_server.api_url
    Secret(value="register-the-type").save("zz-secret-type", overwrite=True)
    aws_key, nested, nested_line = secrets.token_hex(20), secrets.token_hex(12), secrets.token_hex(16)
    pads = [(f"pad-{i:03d}-{secrets.token_hex(4)}", {"value": f"padding-{i:03d}"}) for i in range(205)]
    _save_blocks(api_url, "secret", pads)
    AwsCredentials(aws_access_key_id="AKIAEXAMPLEKEYID", aws_secret_access_key=aws_key).save(
        "zzz-aws-credentials", overwrite=True
    )
    Secret(value={"service": {"password": nested, "pem": f"-----BEGIN X-----\n{nested_line}\n-----END X-----"}}).save(
        "zzz-json-secret", overwrite=True
    )
    found = server_secrets(ApiClient(api_url, timeout=60))
    assert aws_key in found
    assert nested in found and any(nested_line in value for value in found)
    assert "padding-204" in found
    scrubber = scrubber_for({}, api_url)
    assert scrubber(f"{aws_key} {nested} {nested_line}") == f"{MASK} {MASK} {MASK}"


def test_a_megabyte_key_file_is_scrubbed_in_time_proportional_to_the_output() -> None:
    """Counted, not timed: the masker's lookups grow with the text scrubbed, not with text times secret lines."""
    body = base64.b64encode(os.urandom(768 * 1024)).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    scrubber = Scrubber([pem(lines)])
    assert len(lines) > 16000
    masked = [scrubber(line) for line in lines]
    assert masked == [MASK] * len(lines)
    probes = Probe(scrubber._masker._plan[1])
    scrubber._masker._plan = (scrubber._masker._plan[0], probes)
    ordinary = "an ordinary output line of about sixty characters, no secret"
    for _ in range(100):
        scrubber(ordinary)
    assert probes.lookups <= 100 * len(ordinary)
    assert scrubber(" ".join(lines[:50])) == " ".join([MASK] * 50)


class Probe(dict[str, list[str]]):
    """An index that counts its lookups."""

    lookups = 0

    def get(self, key: str, default: object = None) -> list[str] | None:  # type: ignore[override]
        self.lookups += 1
        return super().get(key)


VECTORS = json.loads((Path(__file__).parent / "vectors" / "secret_lines.json").read_text())


@pytest.mark.parametrize("indexed", [False, True], ids=["few", "indexed"])
def test_python_masks_the_shared_vectors(indexed: bool) -> None:
    for case in VECTORS["lines"]:
        assert secret_lines(case["value"]) == case["lines"], case["value"]
    padding = [f"padding-secret-{i:04d}" for i in range(Masker.FEW + 1)] if indexed else []
    mask = Masker([*VECTORS["secrets"], *padding])
    assert [mask(case["text"]) for case in VECTORS["cases"]] == [case["scrubbed"] for case in VECTORS["cases"]]


@pytest.mark.julia
def test_julia_masks_the_shared_vectors() -> None:
    """The same vectors through the Julia package's scrubber, both paths (a real julia)."""
    julia = find_julia(os.environ)
    done = subprocess.run(
        [julia, f"--project={REPO_ROOT / 'julia'}", "--startup-file=no", str(Path(__file__).parent / "secret_lines_vectors.jl"),
         str(Path(__file__).parent / "vectors" / "secret_lines.json")],
        capture_output=True, text=True, timeout=600, env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")},
    )  # fmt: skip
    assert done.returncode == 0 and " 0 failed" in done.stdout, done.stdout + done.stderr
