"""Notifications as code: ``envs/<env>.automations.toml`` declares them; ``apply`` makes them Prefect automations.

Each ``[[notifications]]`` entry watches deployments of the environment and sends a message through a
webhook block of ``envs/<env>.blocks.toml`` when one of their runs

- ends in one of ``states`` (e.g. Failed, Crashed, TimedOut), or
- stays Pending or Running longer than ``late_after`` (e.g. ``"45m"``, ``"2h"``, ``"1h30m"``).

``apply`` is idempotent like deployments: an automation is created or updated, and one the kit made earlier
that is no longer declared is deleted. The kit marks its automations with the tag ``prefect-julia`` and
touches no other. Everything is checked (names, durations, blocks, deployments) before anything is
written. The Prefect server renders and sends the message (its triggers and actions services); a webhook
that does not answer changes nothing about the run, and the server records the failed action.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect_julia.core.errors import ConfigError
from prefect_julia.kit.declarations import blocks, deployments, webhooks
from prefect_julia.kit.environment.environments import Environment

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.events.schemas.automations import AutomationCore

__all__ = [
    "FINAL_STATES",
    "MANAGED_TAG",
    "Notification",
    "apply",
    "check",
    "declarations_path",
    "load",
    "managed",
    "parse_duration",
]

MANAGED_TAG = "prefect-julia"
FINAL_STATES = ("Completed", "Failed", "Crashed", "Cancelled", "TimedOut")
#: Prefect evaluates a "did not happen in time" trigger at most this finely.
MIN_LATE_AFTER = timedelta(seconds=10)
ALL_DEPLOYMENTS = "*"
_DURATION = re.compile(r"(\d+)\s*([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Notification:
    """One declared notification: what it watches, when it fires and which webhook block it uses."""

    name: str
    deployments: tuple[str, ...]
    block: str
    states: tuple[str, ...] = ()
    late_after: timedelta | None = None
    late_after_text: str = ""
    description: str = ""

    @property
    def kind(self) -> str:
        return "late" if self.late_after is not None else "state"

    @property
    def automation_name(self) -> str:
        return f"{MANAGED_TAG}/{self.name}"


def declarations_path(root: Path, env: str) -> Path:
    return root / "envs" / f"{env}.automations.toml"


def parse_duration(text: object, where: str) -> timedelta:
    """``"90s"``, ``"15m"``, ``"2h"``, ``"1d"``, ``"1h30m"`` (or a number of seconds) as a timedelta."""
    if isinstance(text, int) and not isinstance(text, bool):
        seconds = text
    elif isinstance(text, str):
        compact = text.replace(" ", "").lower()
        parts = _DURATION.findall(compact)
        if not parts or "".join(n + u for n, u in parts) != compact:
            raise _bad_duration(text, where)
        seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    else:
        raise _bad_duration(text, where)
    duration = timedelta(seconds=seconds)
    if duration < MIN_LATE_AFTER:
        raise ConfigError(
            f"{where}: late_after = {text!r} is shorter than {MIN_LATE_AFTER.seconds} s, "
            "the finest Prefect checks a run for lateness.",
            hint='Use at least "10s", e.g. late_after = "30m".',
        )
    return duration


def _bad_duration(text: object, where: str) -> ConfigError:
    return ConfigError(
        f"{where}: late_after = {text!r} is not a duration.",
        hint='Write a number and a unit (s, m, h, d), e.g. late_after = "45m" or "1h30m".',
    )


def _names(raw: object, where: str, what: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(x, str) and x for x in raw):
        raise ConfigError(f"{where}: `{what}` must be a non-empty list of names.", hint=f'e.g. {what} = ["daily"].')
    return tuple(raw)


def load(root: Path, env: str) -> list[Notification]:
    """Read ``envs/<env>.automations.toml``: its shape, states and durations (no server needed)."""
    path = declarations_path(root, env)
    if not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}.", hint="Fix the line it names.") from None
    found: list[Notification] = []
    for index, raw in enumerate(data.get("notifications", [])):
        name = raw.get("name")
        where = f"{path.name} [[notifications]] #{index + 1}" + (f" ({name})" if isinstance(name, str) else "")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{where}: name {name!r} is not valid.", hint="Use letters, digits, '-', '_' and '.'.")
        if any(n.name == name for n in found):
            raise ConfigError(f"{where}: the notification name {name!r} is declared twice.", hint="Rename one.")
        unknown = set(raw) - {"name", "description", "deployments", "block", "states", "late_after"}
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))}.",
                hint="Use name, description, deployments, block, and states or late_after.",
            )
        if ("states" in raw) == ("late_after" in raw):
            raise ConfigError(
                f"{where}: declare either `states` (final states to report) or `late_after` (a duration).",
                hint='e.g. states = ["Failed", "Crashed", "TimedOut"], or late_after = "2h" in a second entry.',
            )
        states: tuple[str, ...] = ()
        late: timedelta | None = None
        if "states" in raw:
            states = _names(raw["states"], where, "states")
            wrong = [s for s in states if s not in FINAL_STATES]
            if wrong:
                raise ConfigError(
                    f"{where}: {', '.join(map(repr, wrong))} is not a final state of a run.",
                    hint=f"Use some of: {', '.join(FINAL_STATES)}.",
                )
        else:
            late = parse_duration(raw["late_after"], where)
        block = raw.get("block")
        if not isinstance(block, str) or block.count("/") != 1:
            raise ConfigError(
                f"{where}: block {block!r} must read 'type/name'.",
                hint=f'Name a webhook of envs/{env}.blocks.toml, e.g. block = "custom-webhook/oncall".',
            )
        found.append(
            Notification(
                name=name,
                deployments=_names(raw.get("deployments"), where, "deployments"),
                block=block,
                states=states,
                late_after=late,
                late_after_text=str(raw.get("late_after", "")),
                description=str(raw.get("description", "")),
            )
        )
    return found


@dataclass(frozen=True)
class Plan:
    """Notifications of one environment, checked against its declared blocks and deployments."""

    env: str
    notifications: tuple[Notification, ...]
    formats: Mapping[str, str]  # block ref -> webhook format


def plan(root: Path, env: str) -> Plan:
    """Load and cross-check ``env``'s notifications without a server; every problem in one error."""
    notifications = load(root, env)
    declared_blocks = {spec.ref: spec for spec in blocks.load(root, env).blocks}
    declared_deployments = {spec.name for spec in deployments.load(root) if env in spec.environments}
    problems: list[str] = []
    for n in notifications:
        spec = declared_blocks.get(n.block)
        if spec is None:
            webhooks_known = [ref for ref, s in declared_blocks.items() if s.slug in blocks.NOTIFICATION_TYPES]
            problems.append(
                f"notification {n.name!r}: block {n.block!r} is not declared in envs/{env}.blocks.toml"
                f" (webhooks there: {', '.join(webhooks_known) or 'none'})."
            )
        elif spec.slug not in blocks.NOTIFICATION_TYPES:
            problems.append(f"notification {n.name!r}: block {n.block!r} is not a webhook block.")
        for name in n.deployments:
            if name != ALL_DEPLOYMENTS and name not in declared_deployments:
                problems.append(
                    f"notification {n.name!r}: deployment {name!r} is not declared for {env}"
                    f" (declared: {', '.join(sorted(declared_deployments)) or 'none'})."
                )
    if problems:
        raise ConfigError(
            f"envs/{env}.automations.toml has problems; nothing was applied:\n  " + "\n  ".join(problems),
            hint=f"Declare the block in envs/{env}.blocks.toml and the deployment for {env}, or fix the names.",
        )
    formats = {ref: spec.format or "generic" for ref, spec in declared_blocks.items() if spec.format}
    return Plan(env=env, notifications=tuple(notifications), formats=formats)


def check(root: Path, environments: tuple[str, ...]) -> list[str]:
    """Problems in every environment's notification declarations, found without a server."""
    problems = []
    for env in environments:
        try:
            plan(root, env)
        except ConfigError as error:
            problems.append(error.message)
    return problems


def _trigger(n: Notification, deployment_ids: list[str]) -> Any:
    from prefect.events.schemas.automations import EventTrigger, Posture

    watched = {"prefect.resource.role": "deployment", "prefect.resource.id": deployment_ids}
    if n.late_after is None:
        return EventTrigger(
            expect={f"prefect.flow-run.{state}" for state in n.states},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related=watched,  # type: ignore[arg-type]
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        )
    return EventTrigger(
        after={"prefect.flow-run.Pending"},  # one clock per run, from Pending through Running to its end
        expect={f"prefect.flow-run.{state}" for state in FINAL_STATES},
        for_each={"prefect.resource.id"},
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related=watched,  # type: ignore[arg-type]
        posture=Posture.Proactive,
        threshold=1,
        within=n.late_after,
    )


def desired(n: Notification, env: Environment, fmt: str, block_id: Any, deployment_ids: list[str]) -> AutomationCore:
    """The Prefect automation for ``n`` on ``env``."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore

    subject, body = webhooks.message(n.kind, fmt, env=env.name, notification=n.name, late_after=n.late_after_text)
    watched = ", ".join(n.deployments)
    when = f"ends {'/'.join(n.states)}" if n.late_after is None else f"is Pending/Running over {n.late_after_text}"
    return AutomationCore(
        name=n.automation_name,
        description=n.description
        or f"A run of {watched} {when}: notify {n.block}. Declared in envs/{env.name}.automations.toml.",
        enabled=True,
        tags=[MANAGED_TAG],
        trigger=_trigger(n, sorted(deployment_ids)),
        actions=[SendNotification(block_document_id=block_id, subject=subject, body=body)],
    )


def _comparable(automation: Any) -> str:
    """An automation's content as canonical JSON: sets sorted, generated ids left out."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k != "id"}
        if isinstance(value, list):
            items = [clean(v) for v in value]
            return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
        return value

    fields = ("name", "description", "enabled", "tags", "trigger", "actions", "actions_on_trigger")
    return json.dumps(clean(automation.model_dump(mode="json", include=set(fields))), sort_keys=True)


def managed(client: SyncPrefectClient) -> list[Any]:
    """The automations on the server that the kit made (tag ``prefect-julia``)."""
    return [a for a in client.read_automations() if MANAGED_TAG in (a.tags or [])]


@dataclass
class AutomationReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def require_blocks(env: Environment, checked: Plan, declared: blocks.Declarations) -> None:
    """Raise unless every webhook block ``checked`` notifies through is on ``env``'s server or will be put there
    by ``invoke deploy`` (declared in ``declared`` with its URL set here). Reads only."""
    from prefect.exceptions import ObjectNotFound

    from prefect_julia.kit.access.prefect_api import client_for

    unset = blocks.unset_settings(declared, env)
    missing = []
    with client_for(env) as client:
        for ref in sorted({n.block for n in checked.notifications} & set(unset)):
            slug, name = ref.split("/", 1)
            try:
                client.read_block_document_by_name(name, slug)
            except ObjectNotFound:
                missing.append(ref)
    if missing:
        settings = list(dict.fromkeys(unset[ref] for ref in missing))
        raise ConfigError(
            f"The notifications of {env.name} use block(s) not on its server whose URL is not set here: "
            f"{', '.join(f'{ref} (from {unset[ref]})' for ref in missing)}. Nothing was applied.",
            hint=f"Put {', '.join(f'{s}=...' for s in settings)} in envs/{env.name}.local.env (git-ignored), "
            f"then run the command again: `invoke deploy {env.name}` creates them before the notifications.",
        )


def wanted(client: SyncPrefectClient, env: Environment, checked: Plan) -> tuple[list[AutomationCore], list[str]]:
    """The automations ``checked`` makes on ``env``'s server, and what keeps the others from being made
    (a webhook block or a deployment not on the server yet)."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags
    from prefect.exceptions import ObjectNotFound

    kit_deployments = client.read_deployments(
        deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[deployments.MANAGED_TAG]))
    )
    ids = {d.name: f"prefect.deployment.{d.id}" for d in kit_deployments}
    made: list[AutomationCore] = []
    problems: list[str] = []
    block_ids: dict[str, Any] = {}  # None: not on the server (said once, however many notifications use it)
    for n in checked.notifications:
        slug, name = n.block.split("/", 1)
        if n.block not in block_ids:
            try:
                block_ids[n.block] = client.read_block_document_by_name(name, slug).id
            except ObjectNotFound:
                block_ids[n.block] = None
                problems.append(f"the block {n.block} is not on the {env.name} server")
        if block_ids[n.block] is None:
            continue
        names = sorted(ids) if ALL_DEPLOYMENTS in n.deployments else list(n.deployments)
        missing = [d for d in names if d not in ids]
        if missing or not names:
            problems.append(f"notification {n.name!r}: deployment(s) {', '.join(missing) or '*'} not deployed")
            continue
        fmt = checked.formats.get(n.block, "generic")
        made.append(desired(n, env, fmt, block_ids[n.block], [ids[d] for d in names]))
    return made, problems


def changed_fields(current: Any, automation: AutomationCore) -> list[str]:
    """The fields of ``current`` (on the server) that differ from ``automation`` (declared); empty: in step."""
    if _comparable(current) == _comparable(automation):
        return []
    fields = ("description", "enabled", "tags", "trigger", "actions", "actions_on_trigger")
    return [f for f in fields if _comparable_field(current, f) != _comparable_field(automation, f)] or ["definition"]


def _comparable_field(automation: Any, name: str) -> str:
    whole = json.loads(_comparable(automation))
    return json.dumps(whole.get(name), sort_keys=True)


def apply(root: Path, env: Environment, checked: Plan | None = None) -> AutomationReport:
    """Make ``env``'s server hold exactly the declared notifications; nothing is written if one is bad."""
    from prefect_julia.kit.access.prefect_api import client_for

    checked = checked or plan(root, env.declares)
    report = AutomationReport()
    with client_for(env) as client:
        made, problems = wanted(client, env, checked)
        if problems:
            raise ConfigError(
                f"Cannot apply the {env.name} notifications; nothing was applied: " + "; ".join(problems) + ".",
                hint=f"Run `invoke deploy {env.name}` first: it applies blocks and deployments before notifications.",
            )
        existing = {a.name: a for a in managed(client)}
        for automation in made:
            current = existing.pop(automation.name, None)
            if current is None:
                client.create_automation(automation)
                report.created.append(automation.name)
            elif _comparable(current) == _comparable(automation):
                report.unchanged.append(automation.name)
            else:
                client.update_automation(current.id, automation)
                report.updated.append(automation.name)
        for stale in existing.values():
            client.delete_automation(stale.id)
            report.removed.append(stale.name)
    return report
