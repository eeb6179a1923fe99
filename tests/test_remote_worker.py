"""A worker on another machine: a second clone that knows the prod server only by URL runs prod's git code.

The "other machine" is a second clone on this one: it has no server of its own (its prod settings point at
the session's real Prefect server), its worker clones the deployed commit (``PREFECT_JULIA_CODE_SOURCE=git``)
and runs the flow there.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import KitRepo, RunningServer, free_port, make_kit_repo

pytestmark = pytest.mark.server

FLOW = '''"""Records where it ran."""

import json
import os
import sys
from pathlib import Path

from prefect import flow


@flow
def where_am_i(marker: str) -> None:
    Path(marker).write_text(json.dumps({"cwd": os.getcwd(), "home": os.environ.get("PREFECT_HOME", ""),
                                        "python": sys.executable}))
'''

PREFECT_YAML = """name: remote-worker-test
prefect-version: 3.8.8
deployments:
  - name: where
    entrypoint: flows/where.py:where_am_i
    parameters:
      marker: ""
    work_pool:
      name: "{{ $PREFECT_JULIA_WORK_POOL }}"
    environments: [prod]
"""


def test_worker_up_from_a_second_clone_runs_prods_git_code(tmp_path: Path, prefect_server: RunningServer) -> None:
    pool = f"remote-{free_port()}"
    shared = f"PREFECT_API_URL={prefect_server.api_url}\nPREFECT_JULIA_WORK_POOL={pool}\n"
    origin = make_kit_repo(tmp_path / "origin", branch="main")
    (origin.root / "flows").mkdir(exist_ok=True)
    (origin.root / "flows" / "where.py").write_text(FLOW)
    (origin.root / "prefect.yaml").write_text(PREFECT_YAML)
    (origin.root / ".gitignore").write_text("envs/*.local.env\n.prefect/\n")
    with (origin.root / "envs" / "prod.env").open("a") as env_file:
        env_file.write(f"PREFECT_JULIA_CODE_SOURCE=git\nPREFECT_JULIA_GIT_URL={origin.root}\n")
    (origin.root / "envs" / "prod.local.env").write_text(shared)
    origin.git("add", "-A")
    origin.git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "flows")

    deployed = origin.invoke("deploy", "--env", "prod", check=True)
    assert "deployed" in deployed.stdout

    # The second machine: a clone with only the server's URL; it never starts a server of its own.
    subprocess.run(["git", "clone", "-q", str(origin.root), str(tmp_path / "laptop")], check=True)
    laptop = KitRepo(root=tmp_path / "laptop", ports={"dev": free_port(), "prod": free_port()})
    (laptop.root / "envs" / "prod.local.env").write_text(shared + f"PREFECT_JULIA_PORT={laptop.ports['prod']}\n")
    try:
        up = laptop.invoke("worker-up", "--env", "prod", check=True, timeout=240)
        assert f"on pool {pool}" in up.stdout
        marker = tmp_path / "marker.json"
        ran = origin.invoke("run", "where", "--env", "prod", "--param", f"marker={marker}", timeout=400)
        assert ran.returncode == 0 and "Completed" in ran.stdout, ran.stdout + ran.stderr
        where = json.loads(marker.read_text())
        assert where["home"] == str(laptop.root / ".prefect" / "prod")  # the laptop's worker ran it
        assert not where["cwd"].startswith((str(origin.root), str(laptop.root)))  # in a fresh clone of the commit
        assert not (laptop.root / ".prefect" / "prod" / "server.pid").exists()
        status = laptop.invoke("worker-status", check=True)
        assert "online" in next(line for line in status.stdout.splitlines() if line.startswith("prod"))
    finally:
        laptop.invoke("worker-down", "--env", "prod")

    unreachable = laptop.invoke("worker-up", "--env", "prod", PREFECT_API_URL=f"http://127.0.0.1:{free_port()}/api")
    assert unreachable.returncode == 3 and "is not reachable" in unreachable.stderr
    assert "PREFECT_API_URL" in unreachable.stderr
