"""Benchmark deploying to prod and a due schedule to its Completed run, through the front door.

    .venv/bin/python benchmarks/deploys.py [--deployments 10] [--rounds 3]

In a temporary copy of the kit on branch main (its own prod server on a free port):
  - ``invoke deploy --env prod`` with N deployments (10 by default), from start to end (median of ``--rounds``),
    against the raw ``prefect --no-prompt deploy --all`` of the same prefect.yaml in a shell set up by
    ``invoke env --shell --env prod`` (the kit adds its checks, a worktree of the commit, pruning);
  - a deployment with a cron schedule due every minute and ``invoke worker-up --env prod`` polling every
    ``PREFECT_WORKER_QUERY_SECONDS`` (5 s here): seconds from the run's scheduled time to the worker picking it
    up (Pending), to its start (Running, after the flow-run process started), and to Completed; target: the
    start within the polling interval + 2 s.
Then `invoke server-down --env prod`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the throwaway kit copies the tests use
from harness import KitRepo, make_kit_repo  # noqa: E402

POLL_SECONDS = 5
SCHEDULED = (
    "  - name: every-minute\n    entrypoint: flows/tick.py:tick\n    tags: [prefect-julia]\n"
    "    schedules:\n      - cron: '* * * * *'\n    work_pool:\n      name: '{{ $PREFECT_JULIA_WORK_POOL }}'\n"
)
FLOW = 'from prefect import flow\n\n\n@flow(name="tick")\ndef tick(word: str = "tock") -> str:\n    return word\n'
IGNORED = ".prefect/\nenvs/*.local.env\ndata/\nprofiles/profiles.toml\n__pycache__/\n"


def declaration(count: int) -> str:
    entries = "".join(
        f"  - name: tick-{i:02d}\n    entrypoint: flows/tick.py:tick\n    tags: [prefect-julia]\n"
        "    work_pool:\n      name: '{{ $PREFECT_JULIA_WORK_POOL }}'\n"
        for i in range(count)
    )
    return (
        "pull:\n  - prefect.deployments.steps.set_working_directory:\n"
        "      directory: '{{ $PREFECT_JULIA_CODE_DIR }}'\n\ndeployments:\n" + entries
    )


def commit(repo: KitRepo, message: str) -> None:
    repo.git("add", "-A")
    repo.git("-c", "user.name=b", "-c", "user.email=b@example.invalid", "commit", "-q", "-m", message)


def timed(action: Any) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-deploys-") as tmp:
        repo = make_kit_repo(Path(tmp) / "repo", branch="main")
        (repo.root / "flows").mkdir()
        (repo.root / "flows" / "tick.py").write_text(FLOW)
        (repo.root / "prefect.yaml").write_text(declaration(args.deployments))
        (repo.root / ".gitignore").write_text(IGNORED)
        commit(repo, "bench")
        env = repo.environment("prod")
        fast = {"PREFECT_WORKER_QUERY_SECONDS": str(POLL_SECONDS)}
        try:
            repo.invoke("server-up", "--env", "prod", check=True, timeout=300)
            repo.invoke(
                "deploy", "--env", "prod", check=True, timeout=600
            )  # untimed: the work pool, the first worktree
            kit, raw = [], []
            python = shlex.quote(sys.executable)
            script = (
                f'eval "$({python} -m invoke env --shell --env prod)" && {python} -m prefect --no-prompt deploy --all'
            )
            for _ in range(args.rounds):
                kit.append(timed(lambda: repo.invoke("deploy", "--env", "prod", check=True, timeout=600)))
                raw.append(
                    timed(
                        lambda: subprocess.run(
                            ["bash", "-c", script], cwd=repo.root, env=repo.environ(), check=True, capture_output=True
                        )
                    )
                )
            k, r = statistics.median(kit), statistics.median(raw)
            print(f"invoke deploy --env prod, {args.deployments} deployments: {k:.1f} s")
            print(f"raw prefect deploy --all, same file: {r:.1f} s   kit/raw = {k / r:.2f}")

            with (repo.root / "prefect.yaml").open("a") as declared:
                declared.write(SCHEDULED)
            commit(repo, "schedule in prod")
            repo.invoke("deploy", "--env", "prod", check=True, timeout=600)
            repo.invoke("worker-up", "--env", "prod", check=True, timeout=300, **fast)
            with urllib.request.urlopen(f"{env.api_url}/deployments/name/tick/every-minute", timeout=30) as response:
                deployment_id = json.load(response)["id"]
            deadline = time.monotonic() + 200
            done: list[dict[str, Any]] = []
            while time.monotonic() < deadline and not done:
                runs = post(f"{env.api_url}/flow_runs/filter", {"deployments": {"id": {"any_": [deployment_id]}}})
                done = [r for r in runs if r["state_type"] == "COMPLETED"]
                time.sleep(1)
            if not done:
                print("due schedule: no Completed run within 200 s")
                return
            run = done[0]
            due = when(run["expected_start_time"])
            with urllib.request.urlopen(f"{env.api_url}/flow_run_states/?flow_run_id={run['id']}", timeout=30) as got:
                states = {s["type"]: when(s["timestamp"]) for s in json.load(got)}
            picked = (states["PENDING"] - due).total_seconds() if "PENDING" in states else float("nan")
            start = (when(run["start_time"]) - due).total_seconds()
            end = (when(run["end_time"]) - due).total_seconds()
            verdict = "met" if start <= POLL_SECONDS + 2 else "missed"
            print(
                f"due schedule -> picked up by the worker (Pending) after {picked:.1f} s, Running after {start:.1f} s "
                f"(target <= {POLL_SECONDS} s poll + 2 s: {verdict}), Completed after {end:.1f} s"
            )
        finally:
            repo.invoke("server-down", "--env", "prod", timeout=120)


if __name__ == "__main__":
    main(sys.argv[1:])
