"""``invoke plan``: what the repository declares for an environment against what its server holds.

Read only: nothing is written to the server or to disk. Compared, in the order ``invoke deploy`` applies them:

- the code its deployments run (a commit source, prod's ``worktree``/``git``): the deployed commit vs HEAD;
- the blocks and variables of ``envs/ENV.blocks.toml`` (also applied alone by ``invoke blocks ENV``). Block
  fields are compared by digest (``blocks.digest``): a changed secret reads ``value changed``, never its value.
  A block whose secret is not set here is not compared (a note says so) and ``invoke deploy`` leaves it;
- the prefect.yaml deployments declared for the environment: schedules (cron, timezone, active; inactive where
  ``PREFECT_JULIA_SCHEDULES=paused``, as ``invoke deploy`` applies them), parameters,
  tags, description (when declared), concurrency limit, work pool, paused (when declared); a deployment the
  kit made (tag ``prefect-julia``) that is no longer declared is to be removed, any other is left alone;
- the work pool (created when missing) and its concurrency limit;
- the notifications of ``envs/ENV.automations.toml`` (automations the kit tagged; others are left alone).

(``invoke plan --against REV``, no server: ``kit/declarations/revision.py``.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect_julia.core import gitrepo
from prefect_julia.core.errors import ConfigError, PrefectJuliaError
from prefect_julia.core.redact import scrub
from prefect_julia.kit.declarations import automations, blocks, codesource, deployments, limits
from prefect_julia.kit.declarations.codesource import Code
from prefect_julia.kit.environment.environments import Environment

__all__ = [
    "EXIT_DIFFERENT",
    "Change",
    "Plan",
    "compute",
    "count_line",
    "declared_fields",
    "drift_line",
    "exit_status",
    "limit_text",
    "render",
    "shown_fields",
    "status_line",
]

#: ``invoke plan --exit-code`` exits with this when the server differs from the repository (0: in step).
EXIT_DIFFERENT = 2
#: Sections in the order ``invoke deploy`` applies them (``invoke blocks`` applies only blocks and variables).
SECTIONS = ("code", "blocks and variables", "deployments", "work pool", "automations")
MARKS = {"create": "+", "change": "~", "remove": "-"}
NONE = "(none)"


@dataclass(frozen=True)
class Change:
    """One difference: ``action`` is create, change or remove; ``details`` never hold a secret value."""

    action: str
    section: str
    subject: str
    details: tuple[str, ...] = ()


@dataclass
class Plan:
    env: str
    api_url: str
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def in_step(self) -> bool:
        return not self.changes

    def count(self, action: str) -> int:
        return sum(1 for change in self.changes if change.action == action)

    def sections(self, *names: str) -> list[Change]:
        return [change for change in self.changes if change.section in names]


def _declared(root: Path, env: Environment, check: bool) -> tuple[list[deployments.DeploymentSpec], Any, Any]:
    """Every declaration of ``env``, checked without a server (the same checks ``invoke deploy`` makes first)."""
    problems = deployments.check(root) if check else []
    if problems:
        raise ConfigError(
            "The deployment declarations have problems; nothing was compared:\n  " + "\n  ".join(problems),
            hint=f"Fix {deployments.DECLARATION_FILE} as each line says (`invoke gate --skip-tests` checks it).",
        )
    specs = [spec for spec in deployments.load(root) if env.declares in spec.environments]
    limits.declared(root, env.declares)  # refuses bad limits
    return specs, automations.plan(root, env.declares), blocks.load(root, env.declares)


def compute(root: Path, env: Environment, *, check: bool = True) -> Plan:
    """The differences between what ``root`` declares for ``env`` and what ``env``'s server holds.

    ``check`` also loads every flow (as ``invoke deploy`` does); ``invoke status`` leaves it out. The server must
    be up and this checkout's (asked first: milliseconds); the declarations are checked before anything is read.
    """
    from prefect_julia.kit.access.prefect_api import client_for, require_up

    require_up(env)  # a server that is down or another checkout's is refused at once, before flows load
    specs, notifications, declared_blocks = _declared(root, env, check)
    plan = Plan(env=env.name, api_url=env.api_url)
    code = _planned_code(env, root, plan.notes)
    with client_for(env) as client:  # refuses a server that is down or another checkout's, before any read
        flows = {f.id: f.name for f in client.read_flows()}
        on_server = list(client.read_deployments())
        managed = [d for d in on_server if deployments.MANAGED_TAG in (d.tags or [])]
        if specs:
            plan.changes += _code_changes(env, code, managed)
        plan.changes += _deployment_changes(root, env, code, specs, on_server, flows)
        plan.changes += _pool_changes(client, env, limits.declared(root, env.declares).pool)
        plan.changes += _automation_changes(client, env, notifications, plan.notes)
        plan.changes += _block_changes(client, env, declared_blocks, plan.notes)
    return plan


# --- code --------------------------------------------------------------------------------------------------


def _planned_code(env: Environment, root: Path, notes: list[str]) -> Code:
    """The code source a deploy would use, described without making it (no worktree, no clone)."""
    kind = env.code_source
    if kind == "tree":
        return codesource.working_tree(root)
    try:
        head = codesource.deployable_commit(root, env)
    except ConfigError as error:
        notes.append(error.message)
        head = gitrepo.rev_parse(root, "HEAD")
    directory = str(env.files.code / head) if kind == "worktree" else str(root)
    return Code(kind=kind, root=root, storage=None, directory=directory, describe=f"commit {head[:10]}", commit=head)


def _running_commits(env: Environment, managed: Iterable[Any]) -> set[str]:
    """The commits the kit's deployments run, read from their pull steps (a worktree folder or a git clone)."""
    found = set()
    for deployment in managed:
        for step in deployment.pull_steps or []:
            for options in step.values():
                if not isinstance(options, Mapping):
                    continue
                if options.get("commit_sha"):
                    found.add(str(options["commit_sha"]))
                directory = Path(str(options.get("directory") or ""))
                if directory.parent == env.files.code:
                    found.add(directory.name)
    return found


def _code_changes(env: Environment, code: Code, managed: list[Any]) -> list[Change]:
    if code.kind == "tree" or code.commit is None:
        return []
    running = _running_commits(env, managed) or {c for c in [env.deployed_commit] if c}
    if running == {code.commit}:
        return []
    old = ", ".join(sorted(c[:10] for c in running)) or NONE
    subject = f"code of the {env.name} deployments ({code.kind})"
    return [Change("create" if not running else "change", "code", subject, (f"commit: {old} -> {code.commit[:10]}",))]


# --- deployments -------------------------------------------------------------------------------------------


def limit_text(value: Any) -> str:
    if isinstance(value, Mapping):
        value = value.get("limit")
    return NONE if value is None else str(value)


def _schedules(items: Iterable[tuple[str, str, bool]]) -> str:
    texts = sorted(f"{cron} {tz}" + ("" if active else " (inactive)") for cron, tz, active in items)
    return ", ".join(texts) or NONE


def declared_fields(options: Mapping[str, Any], raw: Mapping[str, Any]) -> dict[str, str]:
    """What ``apply`` sets on a deployment, as comparable text, from its options (``deployments._options``)."""
    fields = {
        "schedules": _schedules(
            (s["schedule"].cron, s["schedule"].timezone or "UTC", bool(s["active"])) for s in options["schedules"]
        ),
        "tags": ", ".join(sorted(options["tags"])),
        "concurrency limit": limit_text(options.get("concurrency_limit")),
        "work pool": str(options["work_pool_name"]),
    }
    fields.update({f"parameter {k}": json.dumps(v, sort_keys=True) for k, v in options["parameters"].items()})
    if raw.get("description") is not None:  # left out, Prefect takes the flow's docstring: not compared
        fields["description"] = str(options["description"] or "")
    if raw.get("paused") is not None:
        fields["paused"] = "yes" if options["paused"] else "no"
    return fields


def _server_fields(deployment: Any) -> dict[str, str]:
    items = []
    for item in deployment.schedules or []:
        schedule = item.schedule
        text = getattr(schedule, "cron", None) or str(getattr(schedule, "interval", None) or "other schedule")
        items.append((text, getattr(schedule, "timezone", None) or "UTC", bool(item.active)))
    limit = deployment.global_concurrency_limit.limit if deployment.global_concurrency_limit else None
    fields = {
        "schedules": _schedules(items),
        "tags": ", ".join(sorted(deployment.tags or [])),
        "concurrency limit": limit_text(limit),
        "work pool": str(deployment.work_pool_name),
        "description": str(deployment.description or ""),
        "paused": "yes" if deployment.paused else "no",
    }
    fields.update({f"parameter {k}": json.dumps(v, sort_keys=True) for k, v in (deployment.parameters or {}).items()})
    return fields


def _differences(wanted: Mapping[str, str], current: Mapping[str, str]) -> tuple[str, ...]:
    """``name: old -> new`` for each field that differs (a parameter on the server only is to be removed)."""
    names = list(wanted) + [k for k in current if k.startswith("parameter ") and k not in wanted]
    return tuple(
        f"{name}: {current.get(name, NONE)} -> {wanted.get(name, NONE)}"
        for name in names
        if current.get(name) != wanted.get(name)
    )


def _deployment_changes(
    root: Path, env: Environment, code: Code, specs: list[Any], on_server: list[Any], flows: Mapping[Any, str]
) -> list[Change]:
    by_name: dict[str, Any] = {}
    for d in sorted(on_server, key=lambda d: deployments.MANAGED_TAG not in (d.tags or [])):  # the kit's first
        by_name.setdefault(d.name, d)
    changes, matched = [], set()
    for spec in specs:
        wanted = declared_fields(deployments.applied_options(root, spec, env, code), spec.raw)
        current = by_name.get(spec.name)
        if current is None:
            summary = tuple(f"{k}: {v}" for k, v in wanted.items() if k in ("schedules", "work pool"))
            changes.append(Change("create", "deployments", f"deployment {spec.name}", summary))
            continue
        matched.add(current.id)
        details = _differences(wanted, _server_fields(current))
        if details:
            name = f"{flows.get(current.flow_id, '?')}/{spec.name}"
            changes.append(Change("change", "deployments", f"deployment {name}", details))
    for d in on_server:
        if deployments.MANAGED_TAG in (d.tags or []) and d.id not in matched:
            name = f"{flows.get(d.flow_id, '?')}/{d.name}"
            changes.append(Change("remove", "deployments", f"deployment {name}", ("no longer declared",)))
    return changes


def _pool_changes(client: Any, env: Environment, declared_limit: int | None) -> list[Change]:
    from prefect.exceptions import ObjectNotFound

    pool = env.require("PREFECT_JULIA_WORK_POOL")
    limit = f"concurrency limit: {limit_text(declared_limit)}"
    try:
        current = client.read_work_pool(pool).concurrency_limit
    except ObjectNotFound:
        return [Change("create", "work pool", f"work pool {pool}", ("type: process", limit))]
    if current == declared_limit:
        return []
    return [
        Change("change", "work pool", f"work pool {pool}", (f"{limit.replace(': ', f': {limit_text(current)} -> ')}",))
    ]


# --- automations, blocks and variables ---------------------------------------------------------------------


def _automation_changes(client: Any, env: Environment, checked: Any, notes: list[str]) -> list[Change]:
    made, problems = automations.wanted(client, env, checked)
    existing = {a.name: a for a in automations.managed(client)}
    changes = []
    for automation in made:
        current = existing.get(automation.name)
        if current is None:
            changes.append(Change("create", "automations", f"automation {automation.name}"))
            continue
        differing = automations.changed_fields(current, automation)
        if differing:
            changes.append(Change("change", "automations", f"automation {automation.name}", tuple(differing)))
    waiting = [n.automation_name for n in checked.notifications if n.automation_name not in {a.name for a in made}]
    for name in waiting:
        action = "change" if name in existing else "create"
        changes.append(Change(action, "automations", f"automation {name}", ("made once what it watches is deployed",)))
    notes += [f"automations: {problem}" for problem in problems]
    declared = {n.automation_name for n in checked.notifications}
    changes += [
        Change("remove", "automations", f"automation {name}", ("no longer declared",))
        for name in existing
        if name not in declared
    ]
    return changes


def shown_fields(spec: blocks.BlockSpec) -> set[str]:
    """Fields of a block whose values the plan may print: those written in the committed file."""
    if spec.slug in blocks.NOTIFICATION_TYPES:
        return {"timeout"}
    return set(spec.fields) - {dotted.split(".", 1)[0] for dotted in spec.fields_from}


def _block_changes(client: Any, env: Environment, decl: blocks.Declarations, notes: list[str]) -> list[Change]:
    unset = blocks.unset_settings(decl, env)
    for ref, setting in unset.items():
        notes.append(f"block {ref} not compared ({blocks.not_set_here(setting, env)})")
    comparable = blocks.without(decl, unset)
    resolved, variables = blocks.resolved_values(comparable, env)
    changes = []
    for spec in comparable.blocks:
        changes += _block_change(client, spec, resolved[spec.ref])
    for name, value in variables.items():
        current = client.read_variable_by_name(name)
        if current is None:
            changes.append(Change("create", "blocks and variables", f"variable {name}", (json.dumps(value),)))
        elif current.value != value:
            detail = f"value: {json.dumps(current.value)} -> {json.dumps(value)}"
            changes.append(Change("change", "blocks and variables", f"variable {name}", (detail,)))
    return changes


def _block_change(client: Any, spec: blocks.BlockSpec, fields: Mapping[str, Any]) -> list[Change]:
    subject = f"block {spec.ref}"
    try:
        state = blocks.compare(client, spec.ref, fields)
    except ValueError:  # it references a block not on the server yet (saved first by `invoke blocks`)
        return [Change("create", "blocks and variables", subject, ("after the block it references",))]
    if not state.exists:
        return [Change("create", "blocks and variables", subject)]
    if not state.changed:
        return []
    shown = shown_fields(spec)
    old: Mapping[str, Any] = {}
    if set(state.changed) & shown:  # read again without secrets, for the fields that may be printed
        slug, name = spec.ref.split("/", 1)
        old = client.read_block_document_by_name(name, slug, include_secrets=False).data
    details = tuple(
        f"{key}: {json.dumps(old.get(key), default=str)} -> {json.dumps(fields.get(key), default=str)}"
        if key in shown
        else f"{key} changed"
        if key != blocks.SECRET_FIELD.get(spec.slug)
        else "value changed"
        for key in state.changed
    )
    return [Change("change", "blocks and variables", subject, details)]


# --- output ------------------------------------------------------------------------------------------------


def render(plan: Plan) -> str:
    """The plan for a person: each section's changes (``+`` create, ``~`` change, ``-`` remove), then a total."""
    lines = [f"plan for {plan.env} ({plan.api_url}):"]
    for section in SECTIONS:
        changes = plan.sections(section)
        if not changes:
            continue
        lines.append(section)
        for change in changes:
            lines.append(f"  {MARKS[change.action]} {change.action:6}  {change.subject}")
            lines += [f"      {detail}" for detail in change.details]
    lines += [f"note: {note}" for note in plan.notes]
    if plan.in_step:
        lines.append(f"no changes: the {plan.env} server holds what the repository declares.")
    else:
        lines.append(f"{count_line(plan.count)}. `invoke deploy {plan.env}` applies them.")
    return scrub("\n".join(lines))


def count_line(count: Callable[[str], int]) -> str:
    """``N to create, N to change, N to remove`` of a plan (or a comparison): ``count`` counts one action."""
    return ", ".join(f"{count(action)} to {action}" for action in MARKS)


def drift_line(plan: Plan) -> str:
    """One line for ``invoke status``: empty when the server holds what the repository declares."""
    if plan.in_step:
        return ""
    shown = [f"{c.action} {c.subject}" for c in plan.changes[:3]] + (["..."] if len(plan.changes) > 3 else [])
    return scrub(
        f"warning: the {plan.env} server differs from the repository ({len(plan.changes)} difference(s): "
        f"{'; '.join(shown)}). `invoke plan {plan.env}` shows them, `invoke deploy {plan.env}` applies them."
    )


def exit_status(plan: Plan, exit_code: bool) -> int:
    """``invoke plan``'s exit status: ``EXIT_DIFFERENT`` for a difference when ``--exit-code`` asks, else 0."""
    return EXIT_DIFFERENT if exit_code and not plan.in_step else 0


def status_line(env: Environment) -> str:
    """``drift_line`` of ``env`` for ``invoke status``, or why it could not be compared."""
    try:
        return drift_line(compute(env.root, env, check=False))
    except PrefectJuliaError as error:
        reason = error.message
    except Exception as error:  # a status screen shows what it can
        reason = f"{type(error).__name__}: {error}"
    return scrub(f"warning: could not compare the {env.name} server with the repository: {reason}")
