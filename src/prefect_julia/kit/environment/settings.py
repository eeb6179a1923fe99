"""Settings of an environment: each declared once, resolved from layered sources, each value with its source.

Precedence, lowest to highest: built-in defaults < the committed ``envs/<env>.env`` < the git-ignored
``envs/<env>.local.env`` (secrets and personal overrides) < the process environment. Files are read with
python-dotenv. Functions here take mappings and paths; only the edge reads ``os.environ``.
"""

from __future__ import annotations

import enum
import hashlib
import io
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from prefect_julia.core.errors import ConfigError
from prefect_julia.core.secrets import is_secret_name, mask, url_passwords
from prefect_julia.core.setting import DEBUG, RUNTIME_SETTINGS, Setting, per_environment

#: Set by ``invoke env --shell --env ENV``; process values then belong to that environment only.
ENV_MARKER = "PREFECT_JULIA_ENV"


class Source(enum.IntEnum):
    """Where a value came from, in order of precedence."""

    DEFAULT = 0
    BASE_COMMITTED = 1
    BASE_LOCAL = 2
    RECORDED = 3
    COMMITTED = 4
    LOCAL = 5
    PROCESS = 6

    def describe(self, env: str, base: str | None = None) -> str:
        return {
            Source.DEFAULT: "default",
            Source.BASE_COMMITTED: f"envs/{base}.env",
            Source.BASE_LOCAL: f"envs/{base}.local.env",
            Source.RECORDED: "branch environment",
            Source.COMMITTED: f"envs/{env}.env",
            Source.LOCAL: f"envs/{env}.local.env",
            Source.PROCESS: "process environment",
        }[self]


#: Ports of the kit's own environments; another declared environment gets a stable one from its name, and a
#: branch environment a free one from PREFECT_JULIA_BRANCH_PORTS (recorded once chosen).
DEFAULT_PORTS = {"prod": "4300", "dev": "4309"}
OTHER_PORTS = range(4320, 4400)


def default_port(env: str) -> str:
    """The port an environment's server gets when no file sets one."""
    if env in DEFAULT_PORTS:
        return DEFAULT_PORTS[env]
    digest = int(hashlib.sha1(env.encode("utf-8")).hexdigest(), 16)
    return str(OTHER_PORTS.start + digest % len(OTHER_PORTS))


def server_url(host: str, port: int | str) -> str:
    """The address of a local server (its UI)."""
    return f"http://{host}:{port}"


def api_url(server: str) -> str:
    """The API URL clients of ``server`` use."""
    return f"{server}/api"


CODE_SOURCE = Setting(
    "PREFECT_JULIA_CODE_SOURCE",
    "where runs get their code: tree (the checkout), worktree (the deployed commit), git (a clone of it)",
    kind="choice",
    choices=("tree", "worktree", "git"),
    derive=per_environment(prod="worktree", other="tree"),
)
FLOW_START = Setting(
    "PREFECT_JULIA_FLOW_START",
    "how the worker starts a flow run: fork (from a warm Python with Prefect loaded; every environment but prod) "
    "or spawn (a new Python per run, Prefect's own way; prod)",
    kind="choice",
    choices=("fork", "spawn"),
    derive=per_environment(prod="spawn", other="fork"),
)
LOG_BATCH_SECONDS = Setting(
    "PREFECT_LOGGING_TO_API_BATCH_INTERVAL",
    "seconds between a flow run's shipments of its log lines to the server (0.25 but in prod, where it is 2: "
    "`invoke run` shows them live)",
    kind="seconds",
    derive=per_environment(prod="2", other="0.25"),
)
AUTH = Setting(
    "PREFECT_JULIA_AUTH",
    "basic auth on the local server (default: on; off lets any local user read secrets and run code as you)",
    default="on",
    kind="switch",
)
BRANCH_PORTS = Setting(
    "PREFECT_JULIA_BRANCH_PORTS",
    "ports a new branch environment based on this one may take (first-last; the one chosen is recorded)",
    default="4400-4499",
)
READ_FROM = Setting(
    "PREFECT_JULIA_READ_FROM",
    "where a run's reads fall back to when its data root lacks a file: base (the environment's base), none, "
    "or an environment's name",
    default="base",
)
SCHEDULES = Setting(
    "PREFECT_JULIA_SCHEDULES",
    "whether the deployments' schedules run here: active (prod) or paused (every other environment; the "
    "schedules are deployed inactive, and run only when asked)",
    kind="choice",
    choices=("active", "paused"),
    derive=per_environment(prod="active", other="paused"),
)
DATABASE = Setting(
    "PREFECT_JULIA_DATABASE",
    "database of the environment's server: sqlite or postgresql",
    default="sqlite",
    kind="choice",
    choices=("sqlite", "postgresql"),
)

#: Every setting the kit reads, in resolution order (a derived default may use the values declared before it).
SETTINGS: tuple[Setting, ...] = (
    Setting("PREFECT_JULIA_HOST", "address the local server binds", default="127.0.0.1"),
    Setting(
        "PREFECT_JULIA_PORT",
        "port of the environment's local server",
        kind="port",
        derive=lambda env, _v: default_port(env),
    ),
    Setting(
        "PREFECT_JULIA_HOME",
        "PREFECT_HOME of the environment (relative: to the repository)",
        kind="path",
        derive=lambda env, _v: f".prefect/{env}",
    ),
    Setting(
        "PREFECT_API_URL",
        "API URL clients use",
        derive=lambda _env, v: api_url(server_url(v["PREFECT_JULIA_HOST"], v["PREFECT_JULIA_PORT"])),
    ),
    Setting("PREFECT_API_KEY", "API key of a remote or Cloud server (secret)", secret=True),
    AUTH,
    Setting(
        "PREFECT_API_AUTH_STRING",
        "user:password of the local server's basic auth (secret; generated on first server-up when auth is on)",
        secret=True,
    ),
    Setting(
        "PREFECT_JULIA_PASS_ENV",
        "comma-separated names of further variables the worker and Julia jobs may see",
        default="",
    ),
    Setting(
        "PREFECT_JULIA_HEALTH_TIMEOUT",
        "seconds to wait for a starting server to become healthy",
        default="120",
        kind="seconds",
    ),
    Setting("PREFECT_JULIA_WORK_POOL", "process work pool of the environment", derive=lambda env, _v: f"{env}-process"),
    Setting(
        "PREFECT_JULIA_DATA_ROOT",
        "root folder of the environment's data (relative: to the repository)",
        kind="path",
        derive=lambda env, _v: f"data/{env}",
    ),
    BRANCH_PORTS,
    READ_FROM,
    *RUNTIME_SETTINGS,
    CODE_SOURCE,
    SCHEDULES,
    Setting("PREFECT_JULIA_GIT_URL", "repository a git code source clones (default: the origin remote)"),
    Setting("PREFECT_JULIA_GIT_ACCESS_BLOCK", "name of the Secret block with the token to clone a private repository"),
    Setting("PREFECT_JULIA_WORKER_LIMIT", "most flow runs the worker runs at once (0: no limit)", default="8"),
    Setting(
        "PREFECT_WORKER_QUERY_SECONDS",
        "seconds between the worker's polls for runs (0.5 but in prod, where it is 5: `invoke run` starts at once)",
        kind="seconds",
        derive=per_environment(prod="5", other="0.5"),
    ),
    FLOW_START,
    LOG_BATCH_SECONDS,
    # A flow run's return value is kept as JSON in PREFECT_HOME/storage, so `invoke run` can show it; task
    # results are not (Prefect persists both or neither by default). A value JSON cannot hold is not kept
    # (the run logs a warning and still completes).
    Setting(
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT", "keep each flow run's return value (for `invoke run`)", default="true"
    ),
    Setting("PREFECT_TASKS_DEFAULT_PERSIST_RESULT", "keep task runs' return values too", default="false"),
    Setting("PREFECT_RESULTS_DEFAULT_SERIALIZER", "how kept return values are stored", default="json"),
    Setting(
        "PREFECT_WORKER_PREFETCH_SECONDS",
        "seconds ahead the worker submits scheduled runs",
        default="10",
        kind="seconds",
    ),
    Setting(
        "PREFECT_SERVER_DATABASE_TIMEOUT",
        "seconds the server waits on a busy sqlite database; under a burst of runs the server's own background "
        "tasks can wait on each other this long, so keep it short: a request that gives up is answered 503 and "
        "retried by its client",
        default="15",
        kind="seconds",
    ),
    Setting("PREFECT_CLIENT_MAX_RETRIES", "retries of a request the server answered 503 (busy)", default="8"),
    DEBUG,
    DATABASE,
    Setting(
        "PREFECT_API_DATABASE_CONNECTION_URL",
        "an external database URL; when set, the kit manages no database (secret)",
        secret=True,
    ),
    Setting(
        "PREFECT_JULIA_POSTGRES_BIN",
        "folder of the PostgreSQL server programs (initdb, pg_ctl, pg_dump, pg_restore)",
        default="/usr/lib/postgresql/15/bin",
        kind="path",
    ),
    Setting(
        "PREFECT_JULIA_DATABASE_PORT", "port of the kit-managed PostgreSQL (chosen free on first use)", kind="port"
    ),
    Setting(
        "PREFECT_JULIA_DATABASE_PASSWORD",
        "password of the kit-managed PostgreSQL (generated on first use into envs/<env>.local.env)",
        secret=True,
    ),
)

DECLARED = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Value:
    name: str
    value: str
    source: Source
    secret: bool
    note: str = ""

    def shown(self) -> str:
        """The value as it may be printed: secrets masked."""
        return mask(self.value) if self.secret else self.value


def is_secret(name: str, value: str = "") -> bool:
    """Secret by declaration, by the name rule, or because the value is a URL with a password."""
    setting = DECLARED.get(name)
    return bool(setting and setting.secret) or is_secret_name(name) or bool(value and url_passwords(value))


class _Unparsed(logging.Handler):
    """Collects the line numbers python-dotenv reports for statements it cannot parse."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.args and isinstance(record.args, tuple) and isinstance(record.args[0], int):
            self.lines.append(record.args[0])


def read_env_file(path: Path) -> dict[str, str]:
    """Read a dotenv file with python-dotenv; a malformed line is an error naming file, line and name, never the value."""
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    unparsed = _Unparsed()
    logger = logging.getLogger("dotenv.main")  # where python-dotenv reports what it could not parse
    propagate = logger.propagate
    logger.addHandler(unparsed)
    logger.propagate = False
    try:
        values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    finally:
        logger.removeHandler(unparsed)
        logger.propagate = propagate
    lines = text.splitlines()
    bad = list(unparsed.lines)
    for name, value in values.items():
        if value is None:  # a name without '=': no value at all
            bad += [n for n, line in enumerate(lines, 1) if line.strip().removeprefix("export ").strip() == name][:1]
    if bad:
        number = min(bad)
        name = lines[number - 1].partition("=")[0].strip().removeprefix("export ").strip()
        what = f"the setting {name}" if name.isidentifier() else "this line"
        raise ConfigError(
            f"{path}:{number}: cannot read {what} (its value is not shown).",
            hint="Write settings as NAME=value (quotes allowed), comments start with '#'.",
        )
    return {name: value for name, value in values.items() if value is not None}


def resolve(
    env: str,
    *,
    committed: Mapping[str, str],
    local: Mapping[str, str],
    process: Mapping[str, str],
    base: tuple[str, Mapping[str, str], Mapping[str, str]] | None = None,
    recorded: Mapping[str, str] | None = None,
) -> dict[str, Value]:
    """Resolve every declared setting, plus any extra name the files define, remembering sources.

    Process values override only when the process is not marked (``PREFECT_JULIA_ENV``) for another
    environment: after ``eval "$(invoke env --shell --env dev)"``, ``invoke server-up --env prod`` still gets prod.
    A branch environment has a ``base`` (name, committed and local values: below its own) and ``recorded``
    values (port, home, data root, work pool). Derived defaults are the environment's own: a branch environment
    is never prod (``per_environment``), whatever its base.
    """
    marked = process.get(ENV_MARKER)
    foreign_process = bool(marked) and marked != env
    layers: list[tuple[Source, Mapping[str, str]]] = []
    if base is not None:
        layers += [(Source.BASE_COMMITTED, base[1]), (Source.BASE_LOCAL, base[2]), (Source.RECORDED, recorded or {})]
    layers += [(Source.COMMITTED, committed), (Source.LOCAL, local)]
    if not foreign_process:
        layers.append((Source.PROCESS, process))

    resolved: dict[str, Value] = {}
    plain: dict[str, str] = {}
    for setting in SETTINGS:
        found: Value | None = None
        for source, layer in layers:
            if setting.name in layer:
                raw = layer[setting.name]
                found = Value(setting.name, raw, source, setting.secret or bool(url_passwords(raw)))
        if found is None:
            default = setting.default_for(env, plain)
            if default is None:
                continue
            note = (
                f"(process value ignored: exported for {marked})" if foreign_process and setting.name in process else ""
            )
            found = Value(setting.name, default, Source.DEFAULT, setting.secret, note)
        resolved[setting.name] = found
        plain[setting.name] = found.value
    for file_source, layer in [item for item in layers if item[0] != Source.PROCESS]:  # files only, not the process
        for name, value in layer.items():
            if name in DECLARED:
                continue
            if not foreign_process and name in process:
                resolved[name] = Value(name, process[name], Source.PROCESS, is_secret(name, process[name]))
            else:
                resolved[name] = Value(name, value, file_source, is_secret(name, value))
    return resolved


def set_local_setting(path: Path, name: str, value: str) -> None:
    """Set ``name=value`` in the git-ignored file ``path`` (mode 0600), keeping every other line as it was."""
    from prefect_julia.core.files import write_atomic

    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    kept = [line for line in lines if not re.match(rf"^\s*(export\s+)?{re.escape(name)}\s*=", line)]
    kept.append(f"{name}={value}")
    write_atomic(path, ("\n".join(kept) + "\n").encode("utf-8"), mode=0o600)
