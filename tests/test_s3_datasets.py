"""Datasets on a real S3-compatible server (moto's server mode, with authentication on), from Python and Julia.

Blocks come from blocks-as-code (an aws-credentials block with its secret from a setting and an endpoint URL,
and an s3-bucket block referencing it) applied to the session's real Prefect server. One Julia process runs
every Julia check (its start-up and compilation are the slow part).
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO_ROOT, RunningServer, S3Server, free_port, make_kit_repo
from prefect_julia.core.errors import DatastoreError
from prefect_julia.kit.declarations import blocks
from prefect_julia.kit.environment.environments import resolve_environment
from prefect_julia.runtime.bridge import find_julia
from prefect_julia.runtime.dataset import Dataset, DatasetMissing
from prefect_julia.runtime.s3store import S3Store

pytestmark = pytest.mark.server
EARLIER = "2026-01-02"
ROWS = [{"station": "north", "value": "1.5"}, {"station": "south, east", "value": "2"}]

BLOCKS = """
[[blocks]]
type = "aws-credentials"
name = "team-s3"
secret_from = "TEAM_S3_SECRET"
fields_from = {{ aws_access_key_id = "TEAM_S3_KEY_ID" }}
fields = {{ region_name = "us-east-1", aws_client_parameters = {{ endpoint_url = "{endpoint}" }} }}

[[blocks]]
type = "s3-bucket"
name = "team-data"
fields = {{ bucket_name = "{bucket}", bucket_folder = "datasets", credentials = "aws-credentials/team-s3" }}
"""

JULIA_CHECKS = r"""
using PrefectInterfaces
const PI = PrefectInterfaces
out = Dict{String,Any}()
ds = Dataset("py_readings"; datastore_type="remote")
data, header = readcsv(ds)
out["latest_header"] = header
out["latest_rows"] = [string.(data[i, :]) for i in 1:size(data, 1)]
out["earlier"] = String(read(Dataset("py_readings"; datastore_type="remote", rundate=ENV["EARLIER"])))
out["rundates"] = rundates(ds)
w = Dataset("jl_summary"; datastore_type="remote", dataset_type="reports")
out["written"] = writecsv(w, ["north" 1.5; "south, east" 2]; header=["station", "value"])
write(Dataset("jl_summary"; datastore_type="remote", dataset_type="reports", rundate=ENV["EARLIER"]), "station\nold\n")

PI.S3_TRANSPORT[] = :signed_curl          # Signature V4 computed here, checked by the S3 server
out["signed_read"] = String(read(ds)) == String(read(Dataset("py_readings"; datastore_type="remote")))
PI.S3_TRANSPORT[] = :curl

function failure(f)
    try
        f()
        return "no error"
    catch e
        return e isa S3Error ? string(e.kind, " | ", sprint(showerror, e)) : sprint(showerror, e)
    end
end
creds(secret; endpoint=ENV["S3_ENDPOINT"]) = AWSCredentialsBlock("c", "aws-credentials", "us-east-1", ENV["S3_KEY_ID"],
                                                                  secret, nothing, nothing, endpoint)
good = creds(ENV["S3_SECRET"])
out["missing"] = failure(() -> read(Dataset("never_written"; datastore_type="remote")))
out["wrong_secret"] = failure(() -> read(S3BucketBlock("b", ENV["S3_BUCKET"], "datasets", creds("wrong-secret-value")), "x"))
out["no_bucket"] = failure(() -> write(S3BucketBlock("b", "no-such-bucket", "", good), "x.csv", "a"))
out["unreachable"] = failure(() -> read(S3BucketBlock("b", ENV["S3_BUCKET"], "", creds("s"; endpoint=ENV["DEAD_ENDPOINT"])), "x"))
print(json(out))
"""


@pytest.fixture(scope="module")
def remote_env(
    s3_server: S3Server, prefect_server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The s3-bucket block declared as code and applied to the session server; the settings that select it."""
    repo = make_kit_repo(tmp_path_factory.mktemp("s3-kit") / "repo")
    (repo.root / "envs" / "dev.blocks.toml").write_text(
        BLOCKS.format(endpoint=s3_server.endpoint, bucket=s3_server.bucket)
    )
    process = {
        "PREFECT_API_URL": prefect_server.api_url,
        "TEAM_S3_SECRET": s3_server.secret_key,
        "TEAM_S3_KEY_ID": s3_server.access_key,
    }
    env = resolve_environment("dev", repo.root, process)
    report = blocks.apply(blocks.load(repo.root, "dev"), env)
    assert report.created == ["block aws-credentials/team-s3", "block s3-bucket/team-data"]
    again = blocks.apply(blocks.load(repo.root, "dev"), env)
    assert "block aws-credentials/team-s3" in again.unchanged
    return {"PREFECT_API_URL": prefect_server.api_url, "PREFECT_DATA_BLOCK_REMOTE": "s3-bucket/team-data"}


def test_secret_in_a_committed_aws_block_is_refused(tmp_path: Path) -> None:
    repo = make_kit_repo(tmp_path / "repo")
    (repo.root / "envs" / "dev.blocks.toml").write_text(
        '[[blocks]]\ntype = "aws-credentials"\nname = "x"\nfields = { aws_secret_access_key = "oops" }\n'
    )
    with pytest.raises(Exception, match="has its value in a committed file"):
        blocks.load(repo.root, "dev")


def _julia(env: dict[str, str], s3: S3Server, tmp_path: Path) -> dict[str, Any]:
    script = tmp_path / "s3_checks.jl"
    script.write_text(JULIA_CHECKS)
    process = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AWS_"))}
    process.update(env)
    process.update(
        EARLIER=EARLIER,
        S3_ENDPOINT=s3.endpoint,
        S3_KEY_ID=s3.access_key,
        S3_SECRET=s3.secret_key,
        S3_BUCKET=s3.bucket,
        DEAD_ENDPOINT=f"http://127.0.0.1:{free_port()}",
    )
    done = subprocess.run(
        [find_julia(os.environ), f"--project={REPO_ROOT / 'julia'}", "--startup-file=no", str(script)],
        env=process,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    assert s3.secret_key not in done.stdout + done.stderr and "wrong-secret-value" not in done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.julia
def test_python_and_julia_share_datasets_on_s3(
    remote_env: dict[str, str], s3_server: S3Server, tmp_path: Path, on_server: RunningServer
) -> None:
    """Python writes -> Julia reads, Julia writes -> Python reads; latest/rundate selection and listing on S3."""
    today = date.today().isoformat()
    written = Dataset("py_readings", datastore_type="remote", env=remote_env).write_csv(ROWS, ["station", "value"])
    base = f"s3://{s3_server.bucket}/datasets/extracts/csv"
    assert written == [
        f"{base}/dataset=py_readings/rundate={today}/data.csv",
        f"{base}/latest/dataset=py_readings/data.csv",
    ]
    earlier = Dataset("py_readings", datastore_type="remote", rundate=EARLIER, env=remote_env)
    earlier.write_text("station,value\nold,0\n")
    assert earlier.rundates() == sorted([EARLIER, today])

    out = _julia(remote_env, s3_server, tmp_path)
    assert out["latest_header"] == ["station", "value"]
    assert out["latest_rows"] == [["north", "1.5"], ["south, east", "2"]]
    assert out["earlier"] == "station,value\nold,0\n"
    assert out["rundates"] == sorted([EARLIER, today])
    assert out["signed_read"] is True
    reports = f"s3://{s3_server.bucket}/datasets/reports/csv"
    assert sorted(out["written"]) == [
        f"{reports}/dataset=jl_summary/rundate={today}/data.csv",
        f"{reports}/latest/dataset=jl_summary/data.csv",
    ]

    summary = Dataset("jl_summary", datastore_type="remote", dataset_type="reports", env=remote_env)
    assert summary.read_csv() == [{"station": "north", "value": "1.5"}, {"station": "south, east", "value": "2"}]
    assert summary.rundates() == sorted([EARLIER, today])
    old = Dataset("jl_summary", datastore_type="remote", dataset_type="reports", rundate=EARLIER, env=remote_env)
    assert old.read_text() == "station\nold\n"

    assert out["missing"].startswith("missing | S3Error: no object at s3://") and "never_written" in out["missing"]
    assert out["wrong_secret"].startswith("credentials |") and "Correct the access key" in out["wrong_secret"]
    assert out["no_bucket"].startswith("nobucket |") and "Create it" in out["no_bucket"]
    assert out["unreachable"].startswith("unreachable |") and "Start the S3 server" in out["unreachable"]


def _store(
    s3: S3Server, *, secret: str | None = None, bucket: str | None = None, endpoint: str | None = None
) -> S3Store:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=endpoint or s3.endpoint,
        region_name="us-east-1",
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=secret or s3.secret_key,
        config=Config(retries={"max_attempts": 1}, connect_timeout=3),
    )
    return S3Store("s3-bucket/test", bucket or s3.bucket, "datasets", client, endpoint or s3.endpoint)


def test_python_remote_failures_name_the_fix(s3_server: S3Server) -> None:
    """A missing object lists the rundates; wrong credentials, a missing bucket, no endpoint: exit code 7."""
    store = _store(s3_server)
    Dataset("only_old", datastore_type="remote", rundate="2025-05-05", store=store).write_text("a\n")
    with pytest.raises(DatasetMissing, match="Rundates stored for it: 2025-05-05") as missing:
        Dataset("only_old", datastore_type="remote", store=store).read_bytes()
    assert str(missing.value.path).startswith(f"s3://{s3_server.bucket}/datasets/extracts/csv/latest/")

    wrong = Dataset("only_old", datastore_type="remote", rundate="2025-05-05", store=_store(s3_server, secret="not-it"))
    with pytest.raises(DatastoreError, match="refused the credentials") as refused:
        wrong.read_bytes()
    assert refused.value.exit_code == 7 and "not-it" not in str(refused.value) and "fix:" in str(refused.value)
    with pytest.raises(DatastoreError, match="refused the credentials"):
        wrong.write_text("b\n")
    assert Dataset("only_old", datastore_type="remote", rundate="2025-05-05", store=store).read_text() == "a\n"

    nobucket = Dataset("x", datastore_type="remote", store=_store(s3_server, bucket="no-such-bucket"))
    for action in (nobucket.read_bytes, lambda: nobucket.write_text("x"), nobucket.rundates):
        with pytest.raises(DatastoreError, match=r"'no-such-bucket' .* does not exist"):
            action()

    dead = Dataset("x", datastore_type="remote", store=_store(s3_server, endpoint=f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(DatastoreError, match="Cannot reach") as unreachable:
        dead.read_bytes()
    assert "Start the S3 server" in str(unreachable.value)
