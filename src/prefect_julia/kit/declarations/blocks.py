"""Blocks and variables as code: ``envs/<env>.blocks.toml`` declares what an environment's server holds.

``apply`` creates or updates them idempotently and reports what changed. Values may use ``{env}``,
``{data_root}`` (the environment's absolute data folder) and ``{root}`` (the repository). Secret values are
never declared: ``secret_from = "NAME"`` takes the value of the setting NAME from the git-ignored
``envs/<env>.local.env`` or the process environment, and every missing secret is reported before anything
is written. A ``custom-webhook`` block (a notification target, see ``kit.webhooks``) takes its URL from
``secret_from`` and a ``format`` (``generic`` or ``slack``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect_julia.core.errors import ConfigError
from prefect_julia.kit.declarations import webhooks
from prefect_julia.kit.environment.environments import Environment

#: Block types a declaration may use, with the Python class that saves them.
BLOCK_CLASSES = {
    "local-file-system": ("prefect.filesystems", "LocalFileSystem"),
    "secret": ("prefect.blocks.system", "Secret"),
    "custom-webhook": ("prefect.blocks.notifications", "CustomWebhookNotificationBlock"),
    "aws-credentials": ("prefect_aws.credentials", "AwsCredentials"),
    "s3-bucket": ("prefect_aws.s3", "S3Bucket"),
}
SECRET_FIELD = {"secret": "value", "custom-webhook": "url", "aws-credentials": "aws_secret_access_key"}
#: Block types automations can notify through.
NOTIFICATION_TYPES = ("custom-webhook",)
#: Fields that name another declared block (``"slug/name"``); it is saved first and referenced.
REFERENCE_FIELDS = {"s3-bucket": {"credentials": "aws-credentials"}}


@dataclass(frozen=True)
class BlockSpec:
    slug: str
    name: str
    fields: Mapping[str, Any]
    secret_from: str | None = None
    format: str | None = None
    fields_from: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.slug}/{self.name}"


@dataclass(frozen=True)
class Declarations:
    path: Path
    blocks: tuple[BlockSpec, ...]
    variables: Mapping[str, Any]


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    #: Blocks left as the server holds them, each with why (a secret not set here).
    skipped: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per block or variable: what was done with it."""
        done = [("created", self.created), ("updated", self.updated), ("unchanged", self.unchanged)]
        return [f"{label:9}  {name}" for label, names in done for name in names] + [
            f"skipped    {reason}" for reason in self.skipped
        ]


def declarations_path(root: Path, env: str) -> Path:
    return root / "envs" / f"{env}.blocks.toml"


def load(root: Path, env: str) -> Declarations:
    """Read and check ``envs/<env>.blocks.toml`` (no server needed)."""
    path = declarations_path(root, env)
    if not path.exists():
        return Declarations(path, (), {})
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}.", hint="Fix the line it names.") from None
    blocks = [
        _block_spec(raw, f"{path.name} [[blocks]] #{index + 1}", env)
        for index, raw in enumerate(data.get("blocks", []))
    ]
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        raise ConfigError(f"{path}: [variables] must be a table of name = value.")
    return Declarations(path, tuple(blocks), variables)


def _block_spec(raw: Mapping[str, Any], where: str, env: str) -> BlockSpec:
    """One ``[[blocks]]`` entry of ``env``'s declarations, checked; ``where`` names it in errors."""
    slug, name = raw.get("type"), raw.get("name")
    if slug not in BLOCK_CLASSES:
        raise ConfigError(
            f"{where}: block type {slug!r} is not one the kit can declare.",
            hint=f"Use one of: {', '.join(BLOCK_CLASSES)}.",
        )
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_" for c in name):
        raise ConfigError(f"{where}: block name {name!r} is not valid.", hint="Use letters, digits, '-' and '_'.")
    fields = dict(raw.get("fields", {}))
    secret_from = raw.get("secret_from")
    _check_secret(slug, name, fields, secret_from, where, env)
    fmt = raw.get("format")
    if slug in NOTIFICATION_TYPES:
        _check_webhook(name, fmt, fields, where)
    fields_from = raw.get("fields_from", {})
    if not isinstance(fields_from, dict) or not all(isinstance(v, str) for v in fields_from.values()):
        raise ConfigError(
            f"{where}: fields_from must map field names to setting names.",
            hint='e.g. fields_from = { aws_access_key_id = "S3_ACCESS_KEY_ID" }',
        )
    _check_references(slug, fields, where)
    return BlockSpec(
        slug=slug,
        name=name,
        fields=fields,
        secret_from=secret_from,
        format=fmt,
        fields_from=dict(fields_from),
    )


def _check_secret(slug: str, name: str, fields: Mapping[str, Any], secret_from: Any, where: str, env: str) -> None:
    """A block type that holds a secret takes it from ``secret_from``, never from a committed value."""
    if slug in SECRET_FIELD and SECRET_FIELD[slug] in fields:
        raise ConfigError(
            f"{where}: the secret {name!r} has its value in a committed file.",
            hint=f'Remove it and write secret_from = "SETTING_NAME"; put SETTING_NAME=... in envs/{env}.local.env.',
        )
    if slug in SECRET_FIELD and not secret_from:
        raise ConfigError(
            f'{where}: the secret {name!r} needs secret_from = "SETTING_NAME".',
            hint=f"Put SETTING_NAME=... in envs/{env}.local.env (git-ignored).",
        )


def _check_webhook(name: str, fmt: Any, fields: Mapping[str, Any], where: str) -> None:
    """A notification block has a known ``format`` and no fields but ``timeout``."""
    if fmt not in webhooks.FORMATS:
        raise ConfigError(
            f"{where}: the webhook {name!r} has format {fmt!r}.",
            hint=f"Write format = one of {', '.join(repr(f) for f in webhooks.FORMATS)}.",
        )
    unknown = set(fields) - {"timeout"}
    if unknown or not isinstance(fields.get("timeout", 1.0), int | float):
        raise ConfigError(
            f"{where}: the webhook {name!r} takes only fields = {{ timeout = SECONDS }}.",
            hint="The URL comes from secret_from; the message is built by the kit.",
        )


def _check_references(slug: str, fields: Mapping[str, Any], where: str) -> None:
    """Each reference field names a block of the type it refers to, as ``"slug/NAME"``."""
    for ref_field, ref_slug in REFERENCE_FIELDS.get(slug, {}).items():
        ref = fields.get(ref_field)
        if ref is not None and (not isinstance(ref, str) or not ref.startswith(f"{ref_slug}/")):
            raise ConfigError(
                f'{where}: {ref_field} = {ref!r} must name a declared block as "{ref_slug}/NAME".',
                hint=f'Declare the {ref_slug} block above it and write {ref_field} = "{ref_slug}/<its name>".',
            )


def _render(value: Any, context: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        try:
            return value.format_map(context)
        except (KeyError, ValueError) as error:
            raise ConfigError(
                f"Cannot fill in {value!r}: unknown placeholder {error}.",
                hint=f"Use only {{{'}, {'.join(context)}}}.",
            ) from None
    if isinstance(value, list):
        return [_render(v, context) for v in value]
    if isinstance(value, dict):
        return {k: _render(v, context) for k, v in value.items()}
    return value


def unset_settings(decl: Declarations, env: Environment) -> dict[str, str]:
    """Blocks whose secret (or a ``fields_from`` setting) is not set here: ref -> the first setting missing."""
    unset: dict[str, str] = {}
    for spec in decl.blocks:
        for setting in [spec.secret_from, *spec.fields_from.values()]:
            if setting and not env.lookup(setting):
                unset.setdefault(spec.ref, setting)
    return unset


def not_set_here(setting: str, env: Environment) -> str:
    """Why a block was left out (not compared, not applied): its setting is not set where the kit runs. Never
    in a ``NAME: value`` shape, whose next word the scrubber would mask after a secret-like name."""
    return f"{setting} is not set here, envs/{env.name}.local.env"


def without(decl: Declarations, refs: Collection[str]) -> Declarations:
    """``decl`` without the blocks ``refs`` (their variables kept)."""
    return Declarations(decl.path, tuple(s for s in decl.blocks if s.ref not in refs), decl.variables)


def resolved_values(decl: Declarations, env: Environment) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Every block's fields and every variable's value for ``env``; all missing secrets in one error."""
    context = {"env": env.name, "data_root": str(env.data_root), "root": str(env.root)}
    missing = [
        (spec, setting)
        for spec in decl.blocks
        for setting in [spec.secret_from, *spec.fields_from.values()]
        if setting and not env.lookup(setting)
    ]
    if missing:
        names = ", ".join(f"{spec.ref} (from {setting})" for spec, setting in missing)
        settings = list(dict.fromkeys(setting for _, setting in missing))
        lines = ", ".join(f"{setting}=..." for setting in settings)
        raise ConfigError(
            f"Secret value not set for: {names}. Nothing was changed on the server.",
            hint=f"Add {lines} to envs/{env.name}.local.env (git-ignored), or export them.",
        )
    blocks: dict[str, dict[str, Any]] = {}
    for spec in decl.blocks:
        fields = _render(dict(spec.fields), context)
        if spec.slug in NOTIFICATION_TYPES:
            url = env.lookup(spec.secret_from or "") or ""
            timeout = float(fields.get("timeout", webhooks.DEFAULT_TIMEOUT))
            blocks[spec.ref] = webhooks.block_fields(spec.name, spec.format or "generic", url, timeout)
            continue
        if spec.secret_from:
            fields[SECRET_FIELD.get(spec.slug, "value")] = env.lookup(spec.secret_from)
        for dotted, setting in spec.fields_from.items():
            *parents, last = dotted.split(".")
            target = fields
            for part in parents:
                target = target.setdefault(part, {})
            target[last] = env.lookup(setting)
        blocks[spec.ref] = fields
    return blocks, {name: _render(value, context) for name, value in decl.variables.items()}


def _block_class(slug: str) -> Any:
    import importlib

    module, name = BLOCK_CLASSES[slug]
    return getattr(importlib.import_module(module), name)


def _instantiate(slug: str, fields: Mapping[str, Any]) -> Any:
    """The block object for ``fields``, with reference fields loaded from the server (saved before it)."""
    values = dict(fields)
    for ref_field, ref_slug in REFERENCE_FIELDS.get(slug, {}).items():
        ref = values.get(ref_field)
        if isinstance(ref, str):
            values[ref_field] = _block_class(ref_slug).load(ref.split("/", 1)[1])
    return _block_class(slug)(**values)


def _comparable(value: Any) -> Any:
    """Block data as stored, with SecretStr values unwrapped for comparison (never printed)."""
    if hasattr(value, "get_secret_value"):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    return value


def digest(value: Any) -> str:
    """A value's fingerprint: what the plan compares and keeps of a field that may hold a secret."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class BlockState:
    """One declared block against the server: the block to save, whether it exists, which fields differ.

    Fields are compared by ``digest``: a changed secret is named, its value is kept by no one but ``block``.
    """

    block: Any
    exists: bool
    changed: tuple[str, ...]


def compare(client: Any, ref: str, fields: Mapping[str, Any]) -> BlockState:
    """The declared block ``ref`` with ``fields`` against what ``client``'s server holds (no write)."""
    from prefect.exceptions import ObjectNotFound

    slug, name = ref.split("/", 1)
    try:
        current = client.read_block_document_by_name(name, slug, include_secrets=True)
        existing: dict[str, Any] | None = _comparable(dict(current.data))
    except ObjectNotFound:
        existing = None
    block = _instantiate(slug, fields)
    wanted = _comparable(block.model_dump(include=set(fields)))
    if existing is None:
        return BlockState(block, False, tuple(wanted))
    changed = tuple(k for k, v in wanted.items() if digest(existing.get(k)) != digest(v))
    return BlockState(block, True, changed)


def apply(decl: Declarations, env: Environment, *, skip_unset: bool = False) -> ApplyReport:
    """Create or update ``decl``'s blocks and variables on ``env``'s server; report what changed.

    A block whose secret is not set here is an error naming every one (nothing written), or, with
    ``skip_unset`` (``invoke deploy``, as ``invoke plan`` compares), left as the server holds it and reported.
    """
    from prefect.variables import Variable

    from prefect_julia.kit.access.prefect_api import client_for

    report = ApplyReport()
    if skip_unset:
        unset = unset_settings(decl, env)
        report.skipped += [f"block {ref} ({not_set_here(setting, env)})" for ref, setting in unset.items()]
        decl = without(decl, unset)
    blocks, variables = resolved_values(decl, env)
    with client_for(env) as client:
        for ref, fields in blocks.items():
            state = compare(client, ref, fields)
            if state.exists and not state.changed:
                report.unchanged.append(f"block {ref}")
                continue
            state.block.save(ref.split("/", 1)[1], overwrite=True)
            (report.updated if state.exists else report.created).append(f"block {ref}")
        for name, value in variables.items():
            current_value = Variable.get(name, default=None)
            if current_value == value:
                report.unchanged.append(f"variable {name}")
                continue
            Variable.set(name, value, overwrite=True)
            (report.updated if current_value is not None else report.created).append(f"variable {name}")
    return report


def check(root: Path, environments: tuple[str, ...]) -> list[str]:
    """Problems in every environment's block declarations, found without a server."""
    problems = []
    for env in environments:
        try:
            decl = load(root, env)
            context = {"env": env, "data_root": "", "root": ""}
            for spec in decl.blocks:
                _render(dict(spec.fields), context)
            for value in decl.variables.values():
                _render(value, context)
        except ConfigError as error:
            problems.append(str(error))
    return problems
