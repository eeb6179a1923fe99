"""Deployments as code: ``prefect.yaml`` declares them; ``apply`` puts them on an environment.

The file is Prefect's own format, so ``prefect deploy --all`` reads it too. On top of it the kit adds:
per-environment selection (the kit key ``environments``), idempotent applying (the environment's process work
pool is created when missing, schedules are replaced, never accumulated), pruning (a deployment the kit made
earlier that is no longer declared is deleted; the kit marks its deployments with the tag ``prefect-julia``
and touches no other), and offline checks (``check``: unknown keys, entrypoints, parameters, cron strings).

``{{ $NAME }}`` placeholders are filled from the environment's settings when applying.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from prefect_julia.core.errors import CommandFailed, ConfigError
from prefect_julia.kit.access import identity
from prefect_julia.kit.declarations import codesource
from prefect_julia.kit.declarations.codesource import Code
from prefect_julia.kit.environment.environments import CODE_DIR_SETTING, Environment, declared_environments
from prefect_julia.kit.environment.settings import DECLARED, ENV_MARKER, SCHEDULES, read_env_file
from prefect_julia.kit.worker import workpool

DECLARATION_FILE = Path("prefect.yaml")
MANAGED_TAG = "prefect-julia"

#: Keys of a deployment entry in Prefect 3.8.8's prefect.yaml (``prefect.cli.deploy._models.DeploymentConfig``).
PREFECT_KEYS = frozenset(
    {
        "name", "version", "version_type", "tags", "description", "schedule", "schedules", "paused",
        "concurrency_limit", "flow_name", "entrypoint", "parameters", "enforce_parameter_schema", "build",
        "push", "pull", "work_pool", "triggers", "sla",
    }
)  # fmt: skip
#: The kit's own keys in an entry (Prefect ignores them).
KIT_KEYS = frozenset({"environments"})
#: The keys ``invoke deploy`` applies: to support another Prefect key, add it here and in ``_options``.
APPLIED_KEYS = frozenset(
    {
        "name", "entrypoint", "description", "tags", "parameters", "schedules", "work_pool", "version", "paused",
        "enforce_parameter_schema", "concurrency_limit", *KIT_KEYS,
    }
)  # fmt: skip
SCHEDULE_KEYS = frozenset({"cron", "timezone", "active"})
PLACEHOLDER = re.compile(r"\{\{\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class DeploymentSpec:
    """One entry of prefect.yaml, as written (placeholders not yet filled)."""

    name: str
    entrypoint: str
    raw: Mapping[str, Any] = field(repr=False)
    environments: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return self.entrypoint.split(":", 1)[0]

    @property
    def function(self) -> str:
        return self.entrypoint.split(":", 1)[1]

    @property
    def parameters(self) -> Mapping[str, Any]:
        return dict(self.raw.get("parameters") or {})

    @property
    def schedules(self) -> list[Mapping[str, Any]]:
        return list(self.raw.get("schedules") or [])


def read_file(root: Path) -> dict[str, Any]:
    """The parsed prefect.yaml of ``root``."""
    path = root / DECLARATION_FILE
    if not path.exists():
        raise ConfigError(f"{path} is missing.", hint="Declare deployments there; see the README, 'Add a flow'.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}", hint="Fix the line it names.") from None
    if not isinstance(data, dict) or not isinstance(data.get("deployments", []), list):
        raise ConfigError(f"{path}: `deployments` must be a list of entries.", hint="See the README, 'Add a flow'.")
    return data


def load(root: Path) -> list[DeploymentSpec]:
    """Read prefect.yaml's deployment entries: their shape only (``check`` also imports the flows)."""
    specs: list[DeploymentSpec] = []
    for index, raw in enumerate(read_file(root).get("deployments") or []):
        where = f"{DECLARATION_FILE} deployments #{index + 1}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: an entry must be a mapping of keys (name, entrypoint, ...).")
        name, entrypoint = raw.get("name"), raw.get("entrypoint")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: `name` is missing.", hint="Give the entry a `name:`.")
        if not isinstance(entrypoint, str) or entrypoint.count(":") != 1:
            raise ConfigError(
                f"{where} ({name}): entrypoint {entrypoint!r} must read 'path/to/file.py:flow_function'.",
                hint="Set `entrypoint:` to the flow's file and function.",
            )
        if any(spec.name == name for spec in specs):
            raise ConfigError(f"{where}: the deployment name {name!r} is declared twice.", hint="Rename one.")
        envs = raw.get("environments", list(declared_environments(root)))
        if isinstance(envs, str):
            envs = [envs]
        specs.append(DeploymentSpec(name=name, entrypoint=entrypoint, raw=dict(raw), environments=tuple(envs)))
    return specs


def run_words(root: Path, deployment: str, env: str) -> tuple[str, str]:
    """(deployment, environment) of ``invoke run WORDS``: an environment named alone (``invoke run dev``) is the
    environment, unless a deployment of that name is declared."""
    if deployment in declared_environments(root) and not env and all(spec.name != deployment for spec in load(root)):
        return "", deployment
    return deployment, env


def require_deployment(root: Path, env: str) -> None:
    """Refuse a run that names no deployment, listing the ones declared for ``env``."""
    declared = [spec.name for spec in load(root) if env in spec.environments]
    choices = ", ".join(declared) or f"none yet: declare one in {DECLARATION_FILE}"
    example = declared[0] if declared else "NAME"
    raise ConfigError(
        f"Which deployment? `invoke run` needs its name. Declared for {env}: {choices}.",
        hint=f"Run `invoke run {example} {env}` (or `just run {example} {env}`).",
    )


def _load_flow(root: Path, spec: DeploymentSpec) -> Any:
    from prefect.flows import Flow, load_flow_from_entrypoint

    file = root / spec.path
    if not file.exists():
        raise ConfigError(f"Deployment {spec.name!r}: {spec.path} does not exist.", hint="Fix its entrypoint.")
    try:
        flow: Any = load_flow_from_entrypoint(f"{file}:{spec.function}")
    except Exception as error:
        raise ConfigError(
            f"Deployment {spec.name!r}: cannot load the flow {spec.entrypoint}: {error}",
            hint="Fix its entrypoint: the file must define a @flow function of that name.",
        ) from None
    if not isinstance(flow, Flow):
        raise ConfigError(f"Deployment {spec.name!r}: {spec.entrypoint} is not a @flow.")
    return flow


def known_placeholders(root: Path) -> set[str]:
    """Names a ``{{ $NAME }}`` may use: the kit's settings, the committed env files' names, the code folder."""
    names = {*DECLARED, CODE_DIR_SETTING, ENV_MARKER}
    for env in declared_environments(root):
        names |= set(read_env_file(root / "envs" / f"{env}.env"))
    return names


def _placeholders(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, Mapping):
        return {name for item in value.values() for name in _placeholders(item)}
    if isinstance(value, list):
        return {name for item in value for name in _placeholders(item)}
    return set()


def _shape_problems(spec: DeploymentSpec, known: set[str], declared: tuple[str, ...]) -> list[str]:
    problems = []
    where = f"Deployment {spec.name!r}"
    for key in spec.raw:
        if key not in PREFECT_KEYS | KIT_KEYS:
            problems.append(
                f"{where}: unknown key {key!r} (known: {', '.join(sorted(APPLIED_KEYS))}). Check its spelling."
            )
        elif key not in APPLIED_KEYS:
            problems.append(f"{where}: `invoke deploy` does not apply the key {key!r}; remove it from the entry.")
    for env in spec.environments:
        if env not in declared:
            problems.append(f"{where}: unknown environment {env!r} (use {', '.join(declared)}).")
    for schedule in spec.schedules:
        if not isinstance(schedule, Mapping) or "cron" not in schedule or set(schedule) - SCHEDULE_KEYS:
            problems.append(f"{where}: a schedule must be a mapping of cron (and timezone, active): {schedule!r}.")
    for name in sorted(_placeholders(spec.raw) - known):
        problems.append(f"{where}: the placeholder {{{{ ${name} }}}} names no setting of the kit.")
    return problems


def check_spec(root: Path, spec: DeploymentSpec, known: set[str] | None = None) -> list[str]:
    """Problems with one deployment, found without a server: keys, entrypoint, parameters, cron strings."""
    from prefect.client.schemas.schedules import CronSchedule

    problems = _shape_problems(spec, known_placeholders(root) if known is None else known, declared_environments(root))
    try:
        flow = _load_flow(root, spec)
    except ConfigError as error:
        return [*problems, str(error)]
    signature = inspect.signature(flow.fn)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    for key in spec.parameters:
        if key not in signature.parameters and not accepts_any:
            known_params = ", ".join(signature.parameters)
            problems.append(
                f"Deployment {spec.name!r}: parameter {key!r} is not a parameter of {spec.entrypoint} ({known_params})."
            )
    variadic = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    for name, parameter in signature.parameters.items():
        required = parameter.default is parameter.empty and parameter.kind not in variadic
        if required and name not in spec.parameters:
            problems.append(f"Deployment {spec.name!r}: the flow's required parameter {name!r} has no value.")
    for schedule in spec.schedules:
        if not isinstance(schedule, Mapping) or "cron" not in schedule or _placeholders(schedule):
            continue
        try:
            CronSchedule(cron=str(schedule["cron"]), timezone=str(schedule.get("timezone", "UTC")))
        except Exception as error:
            first = str(error).splitlines()[1:2] or [str(error)]
            problems.append(f"Deployment {spec.name!r}: schedule {schedule['cron']!r} is invalid: {first[0].strip()}")
    return problems


def check(root: Path) -> list[str]:
    """Every problem of prefect.yaml (empty: valid)."""
    try:
        specs = load(root)
    except ConfigError as error:
        return [str(error)]
    known = known_placeholders(root)
    return [problem for spec in specs for problem in check_spec(root, spec, known)]


def template_values(env: Environment, code: Code) -> dict[str, str]:
    """What ``{{ $NAME }}`` stands for in ``env``: its settings, its name and the folder its runs execute."""
    values = {name: value.value for name, value in env.values.items()}
    values[ENV_MARKER] = env.name
    values[CODE_DIR_SETTING] = code.directory
    return values


def render(value: Any, values: Mapping[str, str], where: str) -> Any:
    """``value`` with every ``{{ $NAME }}`` replaced; other placeholders (blocks, variables) are kept for Prefect."""
    if isinstance(value, str):

        def fill(match: re.Match[str]) -> str:
            if match[1] not in values:
                raise ConfigError(
                    f"{where}: the placeholder {match[0]} has no value in this environment.",
                    hint=f"Set {match[1]} in envs/<env>.env, or fix the placeholder in {DECLARATION_FILE}.",
                )
            return values[match[1]]

        return PLACEHOLDER.sub(fill, value)
    if isinstance(value, Mapping):
        return {key: render(item, values, where) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, values, where) for item in value]
    return value


def schedules_paused(env: Environment) -> bool:
    """True when ``env``'s schedules are deployed inactive (``PREFECT_JULIA_SCHEDULES=paused``)."""
    return env.choice(SCHEDULES) == "paused"


def _options(entry: Mapping[str, Any], pool: str, code: Code, *, paused: bool = False) -> dict[str, Any]:
    """Keyword arguments of ``Flow.to_deployment`` for a rendered entry; ``paused``: every schedule inactive
    (one declared ``active: false`` is inactive everywhere)."""
    from prefect.client.schemas.schedules import CronSchedule

    work_pool = entry.get("work_pool") or {}
    job_variables = dict(work_pool.get("job_variables") or {})
    if code.job_env:
        job_variables["env"] = {**code.job_env, **(job_variables.get("env") or {})}
    tags = list(dict.fromkeys([MANAGED_TAG, *(entry.get("tags") or [])]))
    options: dict[str, Any] = {
        "name": entry["name"],
        "description": entry.get("description") or None,
        "tags": tags,
        "parameters": dict(entry.get("parameters") or {}),
        "schedules": [
            {
                "schedule": CronSchedule(cron=str(s["cron"]), timezone=str(s.get("timezone", "UTC"))),
                "active": not paused and s.get("active", True) not in (False, "false", "False"),
            }
            for s in entry.get("schedules") or []
        ],
        "work_pool_name": work_pool.get("name") or pool,
        "job_variables": job_variables or None,
    }
    for key in ("version", "paused", "concurrency_limit", "enforce_parameter_schema"):
        if entry.get(key) is not None:
            options[key] = entry[key]
    return options


def applied_options(root: Path, spec: DeploymentSpec, env: Environment, code: Code) -> dict[str, Any]:
    """What ``apply`` gives Prefect for ``spec`` on ``env`` (placeholders filled): what ``invoke plan`` compares."""
    entry = render(spec.raw, template_values(env, code), f"{DECLARATION_FILE} deployment {spec.name!r}")
    return _options(entry, env.require("PREFECT_JULIA_WORK_POOL"), code, paused=schedules_paused(env))


@dataclass
class DeployReport:
    work_pool: str
    code: str = ""
    work_pool_created: bool = False
    work_pool_locked: bool = False  # an existing pool's job template was replaced by the locked one
    applied: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


@dataclass
class Prepared:
    """Every deployment of an environment, loaded and filled in, ready to be written (nothing written yet)."""

    code: Code
    pool: str
    deployments: list[tuple[Any, dict[str, Any]]]


def prepare(root: Path, env: Environment, code: Code | None = None) -> Prepared:
    """Load every flow declared for ``env`` (a git source is cloned) and fill in its options; writes nothing.

    ``code`` says where the declarations are read and where runs get their code (default: the environment's
    code source, ``codesource.prepare``). A bad declaration or a flow that cannot be loaded raises here.
    """
    identity.check(env)  # before anything is prepared
    code = code or codesource.prepare(env, root)
    source_root = code.root
    specs = [spec for spec in load(source_root) if env.declares in spec.environments]
    known = known_placeholders(source_root)
    problems = [problem for spec in specs for problem in check_spec(source_root, spec, known)]
    if problems:
        raise ConfigError(
            "The deployment declarations have problems; nothing was deployed:\n  " + "\n  ".join(problems),
            hint=f"Fix {DECLARATION_FILE} as each line says (`invoke gate --skip-tests` checks it).",
        )
    pool = env.require("PREFECT_JULIA_WORK_POOL")
    values = template_values(env, code)
    prepared = []
    for spec in specs:
        entry = render(spec.raw, values, f"{DECLARATION_FILE} deployment {spec.name!r}")
        try:
            flow = _load_flow(source_root, spec).from_source(source=code.storage, entrypoint=spec.entrypoint)
        except Exception as error:
            raise CommandFailed(
                f"Deployment {spec.name!r}: its code could not be fetched from {code.describe}: "
                f"{str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__}. "
                "Nothing was deployed.",
                hint=code.fetch_hint,
            ) from None
        prepared.append((flow, _options(entry, pool, code, paused=schedules_paused(env))))
    return Prepared(code, pool, prepared)


def write(root: Path, env: Environment, prepared: Prepared) -> DeployReport:
    """Put the ``prepared`` deployments on ``env``'s server (the pool made if missing); remove the kit's
    deployments no longer declared."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags

    from prefect_julia.kit.access.prefect_api import client_for

    report = DeployReport(work_pool=prepared.pool, code=prepared.code.describe)
    with client_for(env) as client:
        made = workpool.ensure_pool(client, prepared.pool)
        report.work_pool_created, report.work_pool_locked = made == "created", made == "locked"
        declared_ids = set()
        for flow, options in prepared.deployments:
            deployment = flow.to_deployment(**options, _sync=True)
            deployment_id = deployment.apply(_sync=True)
            declared_ids.add(deployment_id)
            if not options["schedules"]:  # an update without schedules leaves the old ones: clear them
                for schedule in client.read_deployment_schedules(deployment_id):
                    client.delete_deployment_schedule(deployment_id, schedule.id)
            report.applied.append(f"{flow.name}/{options['name']}")
        managed = client.read_deployments(
            deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[MANAGED_TAG]))
        )
        for stale in managed:
            if stale.id not in declared_ids:
                client.delete_deployment(stale.id)
                report.removed.append(stale.name)
    codesource.settle(env, root, prepared.code)
    return report


def apply(root: Path, env: Environment, code: Code | None = None) -> DeployReport:
    """Put every deployment declared for ``env`` on its server; nothing is written if a declaration is bad
    or a flow cannot be loaded (``prepare``, then ``write``)."""
    return write(root, env, prepare(root, env, code))
