"""``invoke plan --against REV``: what this tree changes in the declarations against a git revision.

No server is asked: the declarations of this tree and of a git revision (read with ``git show REV:PATH`` into a
temporary folder) are compared for each environment, with the server plan's ``Change`` model and marks
(``kit/declarations/plan.py``). Only committed settings count (local files are left out on both sides).
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect_julia.core import gitrepo
from prefect_julia.core.errors import ConfigError, PrefectJuliaError
from prefect_julia.core.redact import scrub
from prefect_julia.kit.declarations import automations, blocks, deployments, limits
from prefect_julia.kit.declarations.codesource import Code
from prefect_julia.kit.declarations.plan import (
    MARKS,
    NONE,
    SECTIONS,
    Change,
    Plan,
    count_line,
    declared_fields,
    limit_text,
    shown_fields,
)
from prefect_julia.kit.environment.branches import declared_environments
from prefect_julia.kit.environment.environments import Environment, resolve_environment

__all__ = ["DECLARATION_FILES", "Comparison", "compare_revision", "render_comparison"]

#: The files that hold the declarations; ``envs/*.local.env`` (local settings and secrets) is never read.
DECLARATION_FILES = (
    "prefect.yaml",
    "envs/branches.toml",
    "envs/*.env",
    "envs/*.blocks.toml",
    "envs/*.automations.toml",
)
#: Stands for the folder runs execute: it depends on the deploy, not on the declarations.
_CODE_DIR = "{{ $PREFECT_JULIA_CODE_DIR }}"

#: subject -> (section, fields as comparable text)
Items = dict[str, tuple[str, dict[str, str]]]


@dataclass
class Comparison:
    """What this tree changes in the declarations against the revision ``against`` (``commit``), per environment."""

    against: str
    commit: str
    plans: list[Plan] = field(default_factory=list)

    @property
    def in_step(self) -> bool:
        return all(plan.in_step for plan in self.plans)

    def count(self, action: str) -> int:
        return sum(plan.count(action) for plan in self.plans)


def _is_declaration(path: str) -> bool:
    return not path.endswith(".local.env") and any(fnmatch.fnmatchcase(path, glob) for glob in DECLARATION_FILES)


def _copy_revision(root: Path, commit: str, folder: Path) -> None:
    """The declaration files of ``commit`` into ``folder`` (``git show COMMIT:PATH``)."""
    listed = gitrepo.git(root, "ls-tree", "-r", "--name-only", commit, "--", "prefect.yaml", "envs")
    for path in filter(_is_declaration, listed.splitlines()):
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(gitrepo.git(root, "show", f"{commit}:{path}") + "\n", encoding="utf-8")


def _copy_tree(root: Path, folder: Path) -> None:
    """The declaration files of the working tree ``root`` (committed or not) into ``folder``."""
    for glob in DECLARATION_FILES:
        for source in root.glob(glob):
            path = source.relative_to(root).as_posix()
            if source.is_file() and _is_declaration(path):
                (folder / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, folder / path)


def _shown(value: Any, visible: bool) -> str:
    return json.dumps(value, sort_keys=True, default=str) if visible else f"sha256 {blocks.digest(value)[:12]}"


def _block_fields(spec: blocks.BlockSpec) -> dict[str, str]:
    """A declared block as comparable text: values written in the file, or only their digest; setting names."""
    shown = shown_fields(spec)
    fields = {key: _shown(value, key in shown) for key, value in spec.fields.items()}
    fields.update({f"{key} from setting": setting for key, setting in spec.fields_from.items()})
    if spec.secret_from:
        fields[f"{blocks.SECRET_FIELD.get(spec.slug, 'value')} from setting"] = spec.secret_from
    if spec.format:
        fields["format"] = spec.format
    return fields


def _deployment_fields(folder: Path, spec: Any, env: Environment, code: Code, notes: list[str]) -> dict[str, str]:
    try:
        return declared_fields(deployments.applied_options(folder, spec, env, code), spec.raw)
    except ConfigError as error:  # a placeholder only a deploying machine sets: compare the entry as written
        notes.append(f"{env.name}: deployment {spec.name} compared as written ({error.message})")
        return {"entry as written": _shown(dict(spec.raw), False)}


def _environment_items(folder: Path, name: str, notes: list[str]) -> Items:
    """Everything ``folder`` declares for the environment ``name``, as items (committed settings only)."""
    env = resolve_environment(name, folder, {})
    code = Code(kind=env.code_source, root=folder, storage=None, directory=_CODE_DIR, describe="declared code")
    items: Items = {}
    for spec in deployments.load(folder):
        if env.declares in spec.environments:
            items[f"deployment {spec.name}"] = ("deployments", _deployment_fields(folder, spec, env, code, notes))
    pool_limit = limit_text(limits.declared(folder, env.declares).pool)
    items[f"work pool {env.require('PREFECT_JULIA_WORK_POOL')}"] = ("work pool", {"concurrency limit": pool_limit})
    for n in automations.load(folder, env.declares):
        watched = {"deployments": ", ".join(n.deployments), "block": n.block, "states": ", ".join(n.states)}
        when = {"late after": n.late_after_text} if n.late_after is not None else {}
        items[f"automation {n.automation_name}"] = ("automations", {**watched, **when, "description": n.description})
    declared = blocks.load(folder, env.declares)
    for block in declared.blocks:
        items[f"block {block.ref}"] = ("blocks and variables", _block_fields(block))
    for variable, value in declared.variables.items():
        items[f"variable {variable}"] = ("blocks and variables", {"value": _shown(value, True)})
    return items


def _declared_items(folder: Path, only: str, side: str, notes: list[str]) -> dict[str, Items | None]:
    """Items per environment declared in ``folder`` (None: its declarations could not be read, a note says why)."""
    found: dict[str, Items | None] = {}
    for name in declared_environments(folder):
        if only and name != only:
            continue
        try:
            found[name] = _environment_items(folder, name, notes)
        except PrefectJuliaError as error:
            notes.append(f"{name}: the declarations {side} could not be read: {error.message}")
            found[name] = None
    return found


def _item_changes(before: Items, after: Items) -> list[Change]:
    changes = []
    for subject, (section, fields) in after.items():
        old = before.get(subject)
        if old is None:
            changes.append(Change("create", section, subject, tuple(f"{k}: {v}" for k, v in fields.items() if v)))
            continue
        names = list(fields) + [k for k in old[1] if k not in fields]
        details = tuple(
            f"{k}: {old[1].get(k, NONE)} -> {fields.get(k, NONE)}" for k in names if old[1].get(k) != fields.get(k)
        )
        if details:
            changes.append(Change("change", section, subject, details))
    for subject, (section, _) in before.items():
        if subject not in after:
            changes.append(Change("remove", section, subject, ("no longer declared",)))
    return sorted(changes, key=lambda c: SECTIONS.index(c.section))


def compare_revision(root: Path, against: str, env: str = "") -> Comparison:
    """What this tree changes in the declarations against the git revision ``against``, for ``env`` (default:
    every environment either side declares). No server is asked; the working tree's uncommitted edits count."""
    try:
        commit = gitrepo.rev_parse(root, against)
    except PrefectJuliaError:
        raise ConfigError(
            f"{against!r} names no commit, branch or tag of the repository {root}.",
            hint=f"Name one that `git log --oneline --all` lists; a branch of origin only: `git fetch origin "
            f"{against}` first, or write origin/{against}.",
        ) from None
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="prefect-julia-plan-") as tmp:
        folder = Path(tmp) / "declarations"  # both sides in the same folder: paths made from it compare equal
        _copy_revision(root, commit, folder)
        before = _declared_items(folder, env, f"at {against}", notes)
        shutil.rmtree(folder, ignore_errors=True)
        _copy_tree(root, folder)
        after = _declared_items(folder, env, "of this tree", notes)
    if env and env not in before and env not in after:
        raise ConfigError(
            f"Neither this tree nor {against} declares the environment {env!r}.", hint="Name one in envs/."
        )
    comparison = Comparison(against=against, commit=commit)
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name, {}), after.get(name, {})
        plan = Plan(env=name, api_url=f"declarations at {against} {commit[:10]}")
        if old is not None and new is not None:
            plan.changes = _item_changes(old, new)
        plan.notes = [note.removeprefix(f"{name}: ") for note in notes if note.startswith(f"{name}: ")]
        comparison.plans.append(plan)
    return comparison


def render_comparison(comparison: Comparison) -> str:
    """``compare_revision``'s result for a person, per environment, in ``render``'s marks."""
    lines = [f"plan: this tree against {comparison.against} ({comparison.commit[:10]}), declarations only:"]
    for plan in comparison.plans:
        lines.append(f"{plan.env}:" if plan.changes else f"{plan.env}: no changes")
        for change in plan.changes:
            lines.append(f"  {MARKS[change.action]} {change.action:6}  {change.section}: {change.subject}")
            lines += [f"      {detail}" for detail in change.details]
        lines += [f"  note: {note}" for note in plan.notes]
    lines.append("no changes to the declarations." if comparison.in_step else f"{count_line(comparison.count)}.")
    return scrub("\n".join(lines))
