"""The kit's front door: `invoke --list` shows every task, `invoke --help TASK` its options.

Tasks only parse arguments, call the library in ``src/prefect_julia`` and print; errors from the library
become a message and a non-zero exit in ``prefect_julia.cli.edge``. A task that takes an environment takes it as
a bare word or a flag (``invoke server-up dev``, ``invoke server-up --env dev``); left out, it is the environment
of the current git branch (``envs/branches.toml``). How the command line is read: ``prefect_julia.cli.arguments``.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from invoke.context import Context

from prefect_julia.cli import arguments
from prefect_julia.cli.arguments import task
from prefect_julia.cli.edge import guarded
from prefect_julia.core.console import Progress, human_bytes, table
from prefect_julia.kit.access import security
from prefect_julia.kit.environment import environments, profiles
from prefect_julia.kit.run import runs
from prefect_julia.kit.server import servers

if TYPE_CHECKING:
    from prefect_julia.kit.server import inflight as inflight_types

ROOT = Path(__file__).resolve().parent
ENV_HELP = "the environment, also as a bare word: `invoke TASK dev` (default: the current branch's)"
ALL_ENV_HELP = "the environment, also as a bare word (default: every environment)"
arguments.install()  # bare environment words, and bad input that exits 2 with a fix: line


def _env(name: str | None = None) -> environments.Environment:
    notes: list[str] = []
    env = environments.resolve_environment(name or None, ROOT, os.environ, notes=notes)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return env


def _sync_profiles(active: str) -> profiles.SyncReport:
    return profiles.sync(
        ROOT / environments.PROFILES_FILE, environments.all_environments(ROOT, os.environ), active=active
    )


@task(
    help={"env": ENV_HELP, "shell": "print export lines to eval"},
)
@guarded
def env(c: Context, env: str = "", shell: bool = False) -> None:
    """Show an environment's resolved settings and where each came from (secrets masked)."""
    resolved = _env(env)
    if shell:
        if resolved.code_dir is None:
            print(
                f"# {resolved.name} has no deployed commit yet: `invoke deploy {resolved.name}` makes its code folder"
            )
        for name, value in resolved.exports(secrets=False).items():
            print(f"export {name}={shlex.quote(value)}")
        return
    print(f"environment {resolved.name}: {resolved.ui_url} (PREFECT_HOME {resolved.home})")
    print(table(["setting", "value", "source", "help"], environments.describe_sources(resolved)))


@task(name="profile-sync")
@guarded
def profile_sync(c: Context) -> None:
    """Write profiles/profiles.toml: one Prefect profile per environment, your own edits kept."""
    report = _sync_profiles(active=_env().name)
    changes = [f"created {', '.join(report.created)}"] if report.created else []
    changes += [f"updated {', '.join(report.updated)}"] if report.updated else []
    print(f"{report.path.relative_to(ROOT)}: {'; '.join(changes) or 'already up to date'}")


@task(
    name="server-up",
    help={"env": ENV_HELP, "timeout": "seconds to wait (0: setting)"},
)
@guarded
def server_up(c: Context, env: str = "", timeout: float = 0.0) -> None:
    """Start the environment's Prefect server in the background and wait until it is healthy."""
    from prefect_julia.kit.worker import lifecycle

    resolved = _env(env)
    progress = Progress(f"waiting for the {resolved.name} server on port {resolved.port}")
    try:
        up = lifecycle.server_up(resolved, os.environ, progress=progress, timeout=timeout or None)
    finally:
        progress.done()
    _sync_profiles(active=resolved.name)  # after the start: a refused start writes nothing
    for note in up.server.notes:
        print(f"note: {note}")
    state = "already up" if up.server.already_up else f"started in {up.server.seconds:.1f} s"
    print(f"{resolved.name} server {state} (pid {up.server.pid}): {resolved.ui_url}")
    if security.auth_enabled(resolved):
        print(f"UI login: the value of PREFECT_API_AUTH_STRING in envs/{resolved.name}.local.env")
    else:
        print(f"warning: {security.open_warning(resolved)}", file=sys.stderr)
    _report_lost(up.lost)


def _report_lost(runs: list[inflight_types.InFlightRun]) -> None:
    for run in runs:
        print(f"marked Crashed  {run.name}  ({run.deployment}, was {run.state}): it can no longer finish")


@task(
    name="server-down",
    help={
        "env": ENV_HELP,
        "cancel": "cancel the runs in flight first (otherwise a stop with runs in flight is refused)",
    },
)
@guarded
def server_down(c: Context, env: str = "", cancel: bool = False) -> None:
    """Stop the environment's server (and its worker first); refuses while runs are in flight unless --cancel."""
    from prefect_julia.kit.worker import lifecycle

    resolved = _env(env)
    down = lifecycle.server_down(resolved, cancel=cancel, say=_note)
    _report_cancelled(down.cancelled)
    if down.worker_pid is not None:
        print(f"note: Stopped the worker (pid {down.worker_pid}) first.")
    assert down.server is not None
    for note in down.server.notes:
        print(f"note: {note}")
    if not down.server.was_running:
        print(f"{resolved.name} server is not running: nothing to stop.")
    else:
        print(f"{resolved.name} server stopped{' (killed after the grace period)' if down.server.killed else ''}.")


def _note(line: str) -> None:
    print(f"note: {line}", flush=True)


def _report_cancelled(runs: list[inflight_types.InFlightRun]) -> None:
    for run in runs:
        print(f"cancelled  {run.name}  ({run.deployment}, was {run.state})")


def _chosen(env: str) -> list[environments.Environment]:
    """The environment named, or every environment when none is."""
    return [_env(env)] if env else environments.all_environments(ROOT, os.environ)


@task(name="server-status", help={"env": ALL_ENV_HELP})
@guarded
def server_status(c: Context, env: str = "") -> None:
    """Show every environment's server, branch environments of every worktree too: branch, checkout, port, pid,
    state, size, database, URL, services logging errors."""
    from collections import Counter

    from prefect_julia.kit.run.status import size_cells
    from prefect_julia.kit.server import serverlog
    from prefect_julia.kit.worker import prune

    mapping = environments.load_branch_mapping(ROOT)
    explained: list[str] = []
    rows: list[list[object]] = []
    opened: list[environments.Environment] = []
    for resolved in [_env(env)] if env else environments.all_environments(ROOT, os.environ, removed=True):
        s = servers.server_status(resolved, resolved.branch or mapping.branches_of(resolved.name))
        state = [_server_state(resolved, s.healthy, s.pid), prune.removed_note(ROOT, resolved)]
        size, database = size_cells(resolved, s)
        errors = serverlog.service_errors(resolved.files.server_log) if s.pid else Counter()
        explained += serverlog.explain(resolved.name, errors)
        rows.append(
            [
                s.env,
                s.branches,
                resolved.removed_checkout or ("." if resolved.root == ROOT else str(resolved.root)),
                s.port,
                s.pid or "-",
                "; ".join(filter(None, state)),
                size,
                database,
                s.url,
                serverlog.describe(errors),
            ]
        )
        if not security.auth_enabled(resolved):
            rows[-1][-1] = "auth off" if rows[-1][-1] == "-" else f"auth off; {rows[-1][-1]}"
            opened.append(resolved)
    headers = ["env", "branch", "checkout", "port", "pid", "state", "size", "database", "url", "warnings"]
    print(table(headers, rows))
    for resolved in opened:
        print(f"warning: {resolved.name}: {security.open_warning(resolved)}")
    for line in explained:
        print(f"warning: {line}")


@task(
    name="env-prune",
    help={"dry_run": "only show what would be removed", "data": "also delete their home and data root"},
)
@guarded
def env_prune(c: Context, dry_run: bool = False, data: bool = False) -> None:
    """Stop and remove the branch environments whose branch is deleted or merged into main (of every worktree)."""
    from prefect_julia.kit.worker import prune

    report = prune.prune(ROOT, dict(os.environ), dry_run=dry_run, data=data)
    for entry, reason in report.gone:
        print(f"{'would remove' if dry_run else 'removed'}  {entry.name}  ({entry.branch}: {reason}; {entry.checkout})")
    for folder in report.removed_folders:
        print(f"deleted  {folder}")
    if not report.gone:
        print("No branch environment to prune.")
    elif not data and not dry_run:
        print("Their homes (.prefect/NAME) and data roots (data/NAME) are kept; `--data` deletes them too.")


def _server_state(resolved: environments.Environment, healthy: bool, pid: int | None) -> str:
    from prefect_julia.kit.access import identity

    owner = identity.owner(resolved, timeout=2.0) if healthy or pid is None else None
    if owner is not None and not owner.ours:
        return f"taken by {owner.folder}"
    return "healthy" if healthy else ("starting/unhealthy" if pid else "down")


@task(
    name="server-logs",
    help={
        "env": ENV_HELP,
        "follow": "keep printing new lines",
        "lines": "how many lines",
    },
)
@guarded
def server_logs(c: Context, env: str = "", follow: bool = False, lines: int = 50) -> None:
    """Show the environment's server log (--follow to keep watching; Ctrl-C stops)."""
    resolved = _env(env)
    if not resolved.files.server_log.exists():
        print(f"No log yet at {resolved.files.server_log}: start the server with `invoke server-up {resolved.name}`.")
        return
    if not follow:
        from prefect_julia.kit.server import serverlog

        print(serverlog.tail_records(resolved.files.server_log, lines))
        return
    with contextlib.suppress(KeyboardInterrupt):
        servers.follow_log(
            resolved.files.server_log, lines=lines, write=lambda s: print(s, end="", flush=True), stop=lambda: False
        )


@task(
    name="db-backup",
    help={"env": ENV_HELP, "file": "backup file to write (default: PREFECT_HOME/backups/ENV-TIMESTAMP.db|dump)"},
)
@guarded
def db_backup(c: Context, env: str = "", file: str = "") -> None:
    """Back up the environment's database while its server runs (sqlite online backup, or pg_dump)."""
    from prefect_julia.kit.server import backups

    resolved = _env(env)
    written = backups.backup(resolved, Path(file) if file else None)
    print(f"{resolved.name} database backed up to {written} ({human_bytes(written.stat().st_size)})")


@task(name="db-restore", words=("file", "env"), help={"env": ENV_HELP, "file": "a file db-backup wrote"})
@guarded
def db_restore(c: Context, file: str = "", env: str = "") -> None:
    """Restore the environment's database from a backup (refused while flow runs are in flight)."""
    from prefect_julia.core.errors import ConfigError
    from prefect_julia.kit.server import backups

    if not file:
        raise ConfigError("db-restore needs the backup file.", hint="Run `invoke db-restore FILE ENV`.")
    resolved = _env(env)
    result = backups.restore(resolved, Path(file), os.environ)
    print(f"{resolved.name} database restored from {result.source}; the replaced one is kept in {result.safety_copy}")
    if result.restarted:
        print(f"{resolved.name} server restarted.")


# --- flows, blocks, deployments, worker ----------------------------------------------------------------------


@task(help={"env": ENV_HELP})
@guarded
def blocks(c: Context, env: str = "") -> None:
    """Create or update the blocks and variables of envs/ENV.blocks.toml on that environment's server."""
    from prefect_julia.kit.declarations import blocks as block_decls

    resolved = _env(env)
    for line in block_decls.apply(block_decls.load(ROOT, resolved.declares), resolved).lines():
        print(line)


@task(help={"env": ENV_HELP})
@guarded
def deploy(c: Context, env: str = "") -> None:
    """Apply envs/ENV.blocks.toml, prefect.yaml and envs/ENV.automations.toml to the server (all checked first)."""
    from prefect_julia.kit.declarations import rollout
    from prefect_julia.kit.julia import images

    resolved = _env(env)
    _print_rollout(rollout.deploy(ROOT, resolved, show=print))
    images.start_in_background(resolved.process_env(os.environ), say=_note)


@task(
    help={
        "env": ENV_HELP,
        "exit_code": "exit 2 when the server differs from the repository (for scripts)",
        "against": "no server: compare this tree's declarations with a git revision's (e.g. main), every ENV",
        "markdown": "print the plan as Markdown (a GitHub Actions step summary)",
    }
)
@guarded
def plan(c: Context, env: str = "", exit_code: bool = False, against: str = "", markdown: bool = False) -> None:
    """Show what `invoke deploy` (and `invoke blocks`) would change on the environment's server; changes nothing."""
    from prefect_julia.gates import summary
    from prefect_julia.kit.declarations import plan as plans
    from prefect_julia.kit.declarations import revision

    if against:
        compared = revision.compare_revision(ROOT, against, env)
        print(summary.comparison_markdown(compared) if markdown else revision.render_comparison(compared))
        raise SystemExit(plans.EXIT_DIFFERENT if exit_code and not compared.in_step else 0)
    found = plans.compute(ROOT, _env(env))
    print(summary.plan_markdown(found) if markdown else plans.render(found))
    status = plans.exit_status(found, exit_code)
    if status:
        raise SystemExit(status)


def _print_rollout(report: object) -> None:
    from prefect_julia.kit.declarations.rollout import RolloutReport

    assert isinstance(report, RolloutReport)
    for line in report.blocks.lines():
        print(line)
    deployed = report.deployments
    print(f"code: {deployed.code}")
    if deployed.work_pool_created:
        print(f"created work pool {deployed.work_pool} (process; runs may not choose their command or environment)")
    if deployed.work_pool_locked:
        print(f"locked work pool {deployed.work_pool}: runs may no longer choose their command or environment")
    for name in deployed.applied:
        print(f"deployed  {name}  (pool {deployed.work_pool})")
    for name in deployed.removed:
        print(f"removed   {name}  (no longer declared)")
    print(report.pool_limit)
    _print_automations(report.automations)


def _print_automations(report: object) -> None:
    from prefect_julia.kit.declarations.automations import AutomationReport

    assert isinstance(report, AutomationReport)
    for label, names in (
        ("created", report.created),
        ("updated", report.updated),
        ("unchanged", report.unchanged),
        ("removed", report.removed),
    ):
        for name in names:
            print(f"{label:9}  automation {name}")


@task(help={"env": ENV_HELP})
@guarded
def automations(c: Context, env: str = "") -> None:
    """Apply envs/ENV.automations.toml (notifications) alone; `invoke deploy` applies it too."""
    from prefect_julia.kit.declarations import automations as notifications
    from prefect_julia.kit.declarations import blocks as block_decls

    resolved = _env(env)
    checked = notifications.plan(ROOT, resolved.declares)
    notifications.require_blocks(resolved, checked, block_decls.load(ROOT, resolved.declares))
    _print_automations(notifications.apply(ROOT, resolved, checked))


@task(help={"env": ALL_ENV_HELP, "runs": "how many last runs"})
@guarded
def status(c: Context, env: str = "", runs: int = 10) -> None:
    """One screen per environment: server, worker, deployments and next runs, last runs, automations."""
    from prefect_julia.kit.run import status as screens

    print("\n\n".join(screens.render(screens.collect(resolved, last_runs=runs)) for resolved in _chosen(env)))


@task(name="worker-up", help={"env": ENV_HELP})
@guarded
def worker_up(c: Context, env: str = "") -> None:
    """Start a background process worker for the environment's work pool (lost runs are marked Crashed)."""
    from prefect_julia.kit.worker import workers

    state, started = workers.worker_up(_env(env), os.environ, on_lost=_report_lost, say=_note)
    print(f"{state.env} worker {'started' if started else 'already running'} (pid {state.pid}) on pool {state.pool}")


@task(
    name="worker-down",
    help={"env": ENV_HELP, "cancel": "cancel the runs in flight first (otherwise the stop is refused)"},
)
@guarded
def worker_down(c: Context, env: str = "", cancel: bool = False) -> None:
    """Stop the environment's worker; refuses while runs of its pool are in flight unless --cancel."""
    from prefect_julia.kit.worker import lifecycle

    resolved = _env(env)
    down = lifecycle.worker_down(resolved, cancel=cancel, say=_note)
    _report_cancelled(down.cancelled)
    print(f"{resolved.name} worker {'stopped' if down.worker_stopped else 'is not running: nothing to stop'}.")


@task(name="worker-status", help={"env": ALL_ENV_HELP})
@guarded
def worker_status(c: Context, env: str = "") -> None:
    """Show every environment's worker: pool, pid, online or not, warm Julia sessions, log file; the Julia image."""
    from prefect_julia.kit.julia import images
    from prefect_julia.kit.worker import workers

    rows, image_lines = [], []
    for resolved in _chosen(env):
        s = workers.worker_status(resolved)
        state = "online" if s.online else ("running" if s.pid else "down")
        julia = " ".join(map(str, s.sessions)) or "-"
        rows.append([s.env, s.pool, s.pid or "-", state, julia, s.log])
        image_lines.append(f"{resolved.name}: {images.status_line(resolved.process_env(os.environ))}")
    print(table(["env", "pool", "pid", "state", "julia sessions", "log"], rows))
    print("\n".join(dict.fromkeys(image_lines)))


@task(
    name="julia-image",
    help={
        "env": ENV_HELP,
        "force": "build again even when the image matches the code",
        "check": "only say whether it does",
    },
)
@guarded
def julia_image(c: Context, env: str = "", force: bool = False, check: bool = False) -> None:
    """Build the Julia image fresh jobs start with (the package compiled in: jobs start several times faster)."""
    from prefect_julia.kit.julia import images

    environ = _env(env).process_env(os.environ)
    if check:
        state, path = images.image_state(environ)
        print(f"Julia image: {state} ({path})")
        return
    report = images.build_image(environ, force=force, say=_note)
    if not report.built:
        print(f"Julia image is up to date: {report.path} (`--force` builds it again)")
        return
    print(f"built the Julia image {report.path} ({human_bytes(report.size)}) in {report.seconds:.0f} s")
    print("fresh Julia jobs of this code now start with it (PREFECT_JULIA_IMAGE=off turns that off)")
    for old in report.removed:
        print(f"removed an older image: {old.name}")


@task(
    words=("deployment", "env"),
    iterable=["param"],
    help={
        "deployment": "deployment name (or flow/deployment)",
        "param": "a parameter as key=value, converted by the flow's parameter types (repeatable)",
        "env": ENV_HELP,
        "timeout": f"seconds to follow the run (default {runs.DEFAULT_TIMEOUT:.0f}; the run goes on after it)",
    },
)
@guarded
def run(
    c: Context,
    deployment: str = "",
    param: list[str] | None = None,
    env: str = "",
    timeout: float = runs.DEFAULT_TIMEOUT,
) -> None:
    """Run a deployment, print its logs as they arrive, and exit 0 only when it Completed."""
    from prefect_julia.kit.declarations.deployments import require_deployment, run_words

    deployment, env = run_words(ROOT, deployment, env)
    resolved = _env(env or None)
    if not deployment:
        require_deployment(ROOT, resolved.declares)
    params = runs.parse_params(param or [])
    outcome = runs.run(
        resolved,
        deployment or "",
        params,
        timeout=timeout if timeout > 0 else None,
        on_submitted=lambda o: print(f"flow run {o.name} submitted: {o.url}", flush=True),
        on_busy=lambda error: print(
            f"note: the {resolved.name} server is busy ({error}); retrying the submission for up to "
            f"{runs.SUBMIT_PATIENCE / 60:.0f} minutes.",
            file=sys.stderr,
            flush=True,
        ),
        on_state=lambda state: print(f"state: {state}", flush=True),
        write_log=lambda line: print(line, flush=True),
        on_note=lambda note: print(note, file=sys.stderr, flush=True),
    )
    print(f"flow run {outcome.name}: {outcome.state} ({outcome.url})")
    print(runs.result_line(resolved, outcome))


@task(
    help={
        "env": "environment to run the demo in (default: dev)",
        "datastore": "local, or remote (the s3-bucket block of PREFECT_DATA_BLOCK_REMOTE)",
    },
)
@guarded
def demo(c: Context, env: str = "", datastore: str = "local") -> None:
    """Server up, blocks, deploy, worker up, run the demo pipeline, show its output dataset."""
    from prefect_julia.core.errors import ConfigError
    from prefect_julia.kit.run.demo import run_demo

    if datastore not in ("local", "remote"):
        raise ConfigError(f"--datastore {datastore!r} is not a datastore.", hint="Use --datastore local or remote.")
    run_demo(ROOT, os.environ, env or "dev", print, datastore=datastore)


# --- gates: hooks, gate, promotion ---------------------------------------------------------------------------


@task(help={"python": "interpreter the pre-push hook runs the gate with (default: the one running invoke)"})
@guarded
def hooks(c: Context, python: str = "") -> None:
    """Install the git hooks: pre-commit's checks on every commit, the whole gate before a push to main."""
    from prefect_julia.gates.hooks import install_hooks

    for path in install_hooks(ROOT, python=python or None, env=os.environ):
        print(f"installed {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


@task(
    help={
        "skip": "comma-separated steps to skip: layers, declarations, hooks, types, tests",
        "skip_tests": "skip the pytest suite (same as --skip tests)",
        "keep_going": "run every step even after one failed (default: stop at the first failure)",
        "force": "gate a clean tree that already passed the gate with the same tools",
    }
)
@guarded
def gate(c: Context, skip: str = "", skip_tests: bool = False, keep_going: bool = False, force: bool = False) -> None:
    """Run the gate, cheapest step first, stopping at the first failure; once per clean tree (--force again)."""
    from prefect_julia.gates.gate import require_passed
    from prefect_julia.gates.passes import gate_once

    skipped = [name.strip() for name in skip.split(",") if name.strip()] + (["tests"] if skip_tests else [])
    verdict = gate_once(ROOT, skip=skipped, keep_going=keep_going, force=force, env=os.environ)
    if verdict.report is None:
        print("gate: passed (recorded); `invoke gate --force` runs it again")
        return
    print(verdict.report.table())
    from prefect_julia.gates import summary as summaries  # a GitHub Actions run shows the table on its page

    summaries.write(summaries.gate_markdown(verdict.report), os.environ)
    summary = verdict.report.test_summary()
    if summary:
        print(f"tests: {summary}")  # pytest's closing line, last, for whoever reads the run's end
    require_passed(verdict.report)


@task(name="promote", help={"force": "gate the branch's tree even when it already passed the gate"})
@guarded
def promote_task(c: Context, force: bool = False) -> None:
    """From your branch (not main), clean: prod checked, one gate, fast-forward main to it, deploy prod."""
    from prefect_julia.gates import promote as promotion
    from prefect_julia.kit.declarations import rollout

    prod = _env("prod")
    by_ci = prod.deployed_from_ci

    def deploy_prod() -> None:
        if by_ci:  # exactly one place deploys prod: here the push to main does (.github/workflows/deploy.yml)
            print("prod is deployed from CI (PREFECT_JULIA_CODE_SOURCE=git): pushing main deploys it.")
            return
        _print_rollout(rollout.deploy(ROOT, _env("prod"), show=print))

    check = None if by_ci else (lambda: promotion.check_prod(ROOT, prod))
    result = promotion.promote(ROOT, deploy=deploy_prod, check_prod=check, force=force, env=os.environ)
    main = promotion.promotion_branches(ROOT).main
    moved = f"{result.main_before[:10]} -> {result.main_after[:10]}" if result.moved else "already there"
    done = "GitHub deploys it to prod once pushed" if by_ci else "deployed to prod"
    print(f"promoted {result.branch}: {main} {moved}, {done}. Push it with `git push origin {main}`.")


# --- benchmarks: speed is measured here, never in timed tests ------------------------------------------------


def _bench(name: str) -> None:
    """Run ``benchmarks/NAME.py``'s ``main()`` (loaded by path: the folder is not a package)."""
    import importlib.util

    module_name = f"benchmarks_{name}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, ROOT / "benchmarks" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    print(f"== benchmarks/{name}.py", flush=True)
    module.main([])


@task(name="bench-servers")
@guarded
def bench_servers(c: Context) -> None:
    """Time cold `server-up` against raw `prefect server start` on one database, and the warm no-op."""
    _bench("servers")


@task(name="bench-julia")
@guarded
def bench_julia(c: Context) -> None:
    """Time Julia block lookups against curl, `using` time, and a job direct / via the bridge / in a flow run."""
    _bench("julia_blocks")
    _bench("julia_flow")


@task(name="bench-runs")
@guarded
def bench_runs(c: Context) -> None:
    """Time a trivial `invoke run`, 50 runs at once on the kit's and on Prefect's own server, a 10 MB Julia job."""
    _bench("runs")


@task(name="bench-deploys")
@guarded
def bench_deploys(c: Context) -> None:
    """Time `invoke deploy --env prod` with 10 deployments against raw `prefect deploy --all`, and a due schedule."""
    _bench("deploys")


@task(name="bench-team")
@guarded
def bench_team(c: Context) -> None:
    """50 concurrent runs on PostgreSQL vs sqlite (runs/min, 0 lost), and 1 GiB dataset I/O vs cp / boto3."""
    _bench("team_load")
    _bench("datasets_io")


@task(name="bench-tests")
@guarded
def bench_tests(c: Context) -> None:
    """Run the full-size load and fault tests (pytest -m slow); the gate runs their small versions."""
    from prefect_julia.gates.gate import run_slow_tests

    run_slow_tests(ROOT, os.environ)


@task(name="bench")
@guarded
def bench(c: Context) -> None:
    """Run every benchmark (servers, Julia, deployment runs, deploys, team load, dataset I/O), then the slow tests."""
    _bench("gate_time")  # the newest passed gate's time per step, as the gate recorded it (the gate is not run)
    _bench("servers")
    _bench("julia_blocks")
    _bench("julia_flow")
    _bench("runs")
    _bench("deploys")
    _bench("team_load")
    _bench("datasets_io")
    bench_tests(c)
