"""Deployments as code: ``flows/deployments.toml`` declares them; ``apply`` puts them on an environment.

Applying is idempotent: the environment's process work pool is created when missing, every declared
deployment is created or updated, schedules are replaced (never accumulated), and a deployment the kit
made earlier that is no longer declared is deleted. The kit marks its deployments with the tag
``prefect-julia`` and touches no other.
"""

from __future__ import annotations

import inspect
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect_julia.core.errors import ConfigError
from prefect_julia.kit.environments import Environment

DECLARATION_FILE = Path("flows/deployments.toml")
MANAGED_TAG = "prefect-julia"


@dataclass(frozen=True)
class Schedule:
    cron: str
    timezone: str = "UTC"


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    entrypoint: str
    description: str = ""
    tags: tuple[str, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)
    schedules: tuple[Schedule, ...] = ()
    environments: tuple[str, ...] = ("dev", "prod")

    @property
    def path(self) -> str:
        return self.entrypoint.split(":", 1)[0]

    @property
    def function(self) -> str:
        return self.entrypoint.split(":", 1)[1]


def load(root: Path) -> list[DeploymentSpec]:
    """Read ``flows/deployments.toml``: its shape only (``check`` also imports the flows)."""
    path = root / DECLARATION_FILE
    if not path.exists():
        raise ConfigError(f"{path} is missing.", hint="Declare deployments there; see the README, 'Add a flow'.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}.", hint="Fix the line it names.") from None
    specs: list[DeploymentSpec] = []
    for index, raw in enumerate(data.get("deployments", [])):
        where = f"{DECLARATION_FILE} [[deployments]] #{index + 1}"
        name, entrypoint = raw.get("name"), raw.get("entrypoint")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: `name` is missing.")
        if not isinstance(entrypoint, str) or entrypoint.count(":") != 1:
            raise ConfigError(f"{where} ({name}): entrypoint {entrypoint!r} must read 'path/to/file.py:flow_function'.")
        if any(spec.name == name for spec in specs):
            raise ConfigError(f"{where}: the deployment name {name!r} is declared twice.")
        schedules = tuple(
            Schedule(cron=str(s.get("cron", "")), timezone=str(s.get("timezone", "UTC")))
            for s in raw.get("schedules", [])
        )
        specs.append(
            DeploymentSpec(
                name=name,
                entrypoint=entrypoint,
                description=str(raw.get("description", "")),
                tags=tuple(raw.get("tags", [])),
                parameters=dict(raw.get("parameters", {})),
                schedules=schedules,
                environments=tuple(raw.get("environments", ("dev", "prod"))),
            )
        )
    return specs


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


def check_spec(root: Path, spec: DeploymentSpec) -> list[str]:
    """Problems with one deployment, found without a server: entrypoint, parameters, cron strings."""
    from prefect.client.schemas.schedules import CronSchedule

    problems = []
    try:
        flow = _load_flow(root, spec)
    except ConfigError as error:
        return [str(error)]
    signature = inspect.signature(flow.fn)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    for key in spec.parameters:
        if key not in signature.parameters and not accepts_any:
            known = ", ".join(signature.parameters)
            problems.append(
                f"Deployment {spec.name!r}: parameter {key!r} is not a parameter of {spec.entrypoint} ({known})."
            )
    variadic = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    for name, parameter in signature.parameters.items():
        required = parameter.default is parameter.empty and parameter.kind not in variadic
        if required and name not in spec.parameters:
            problems.append(f"Deployment {spec.name!r}: the flow's required parameter {name!r} has no value.")
    for schedule in spec.schedules:
        try:
            CronSchedule(cron=schedule.cron, timezone=schedule.timezone)
        except Exception as error:
            first = str(error).splitlines()[1:2] or [str(error)]
            problems.append(f"Deployment {spec.name!r}: schedule {schedule.cron!r} is invalid: {first[0].strip()}")
    for env in spec.environments:
        if env not in ("dev", "prod"):
            problems.append(f"Deployment {spec.name!r}: unknown environment {env!r} (use dev, prod).")
    return problems


def check(root: Path) -> list[str]:
    try:
        specs = load(root)
    except ConfigError as error:
        return [str(error)]
    return [problem for spec in specs for problem in check_spec(root, spec)]


@dataclass
class DeployReport:
    work_pool: str
    work_pool_created: bool = False
    applied: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def apply(root: Path, env: Environment) -> DeployReport:
    """Put every deployment declared for ``env`` on its server; nothing is written if a declaration is bad."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.exceptions import ObjectNotFound

    from prefect_julia.kit.prefect_api import client_for

    specs = [spec for spec in load(root) if env.name in spec.environments]
    problems = [problem for spec in specs for problem in check_spec(root, spec)]
    if problems:
        raise ConfigError(
            "The deployment declarations have problems; nothing was deployed:\n  " + "\n  ".join(problems)
        )
    pool = env.require("PREFECT_JULIA_WORK_POOL")
    report = DeployReport(work_pool=pool)
    with client_for(env) as client:
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            report.work_pool_created = True
        declared_ids = set()
        for spec in specs:
            flow = _load_flow(root, spec).from_source(source=str(root), entrypoint=spec.entrypoint)
            deployment = flow.to_deployment(
                name=spec.name,
                description=spec.description or None,
                tags=[MANAGED_TAG, *spec.tags],
                parameters=dict(spec.parameters),
                schedules=[CronSchedule(cron=s.cron, timezone=s.timezone) for s in spec.schedules],
                work_pool_name=pool,
                _sync=True,
            )
            deployment_id = deployment.apply(_sync=True)
            declared_ids.add(deployment_id)
            if not spec.schedules:  # an update without schedules leaves the old ones: clear them
                for schedule in client.read_deployment_schedules(deployment_id):
                    client.delete_deployment_schedule(deployment_id, schedule.id)
            report.applied.append(f"{flow.name}/{spec.name}")
        managed = client.read_deployments(
            deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[MANAGED_TAG]))
        )
        for stale in managed:
            if stale.id not in declared_ids:
                client.delete_deployment(stale.id)
                report.removed.append(stale.name)
    return report
