"""``--param key=value`` converted by the deployment's parameter schema, checked before anything is submitted.

A value is converted to the type the flow declares: a ``str`` parameter gets ``"20261121"`` as a string, an
``int`` parameter gets ``20261121``. A name the flow does not have, a value of the wrong type, a missing
required parameter or a malformed ``rundate`` is refused with the list of the flow's parameters. A
``rundate`` in the future is refused unless the deployment carries the tag ``future-rundates``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from prefect_julia.core.errors import ConfigError
from prefect_julia.core.setting import read_switch

FUTURE_TAG = "future-rundates"
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_NULL = {"null", "none"}


def split_params(items: Iterable[str]) -> dict[str, str]:
    """``k=v`` pairs, values kept as written."""
    params: dict[str, str] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--param {item!r} is not key=value.", hint="Write e.g. --param rundate=2026-11-21.")
        if key in params:
            raise ConfigError(f"--param {key} is given twice.", hint="Give each parameter once.")
        params[key] = raw
    return params


@dataclass(frozen=True)
class Parameter:
    name: str
    types: tuple[str, ...]
    required: bool
    default: Any

    def describe(self) -> str:
        kind = " | ".join(self.types) or "any"
        return f"{self.name}: {kind}" + ("" if self.required else f" = {json.dumps(self.default)}")


def _types(spec: Mapping[str, Any], definitions: Mapping[str, Any]) -> tuple[str, ...]:
    if "$ref" in spec:
        target = definitions.get(str(spec["$ref"]).rsplit("/", 1)[-1], {})
        return _types(target, definitions) if isinstance(target, Mapping) else ()
    for key in ("anyOf", "oneOf"):
        if key in spec:
            found: list[str] = []
            for option in spec[key]:
                found += [t for t in _types(option, definitions) if t not in found]
            return tuple(found)
    if "allOf" in spec and len(spec["allOf"]) == 1:
        return _types(spec["allOf"][0], definitions)
    kind = spec.get("type")
    if isinstance(kind, list):
        return tuple(str(k) for k in kind)
    if isinstance(kind, str):
        return (kind,)
    if "enum" in spec:
        return ("string",)
    return ()


def schema_parameters(schema: Mapping[str, Any] | None, defaults: Mapping[str, Any]) -> list[Parameter]:
    """The parameters a deployment's ``parameter_openapi_schema`` declares, in order."""
    schema = schema or {}
    definitions = schema.get("definitions") or schema.get("$defs") or {}
    required = set(schema.get("required") or [])
    found = []
    for name, spec in (schema.get("properties") or {}).items():
        has_default = name in defaults or "default" in spec
        found.append(
            Parameter(
                name=name,
                types=_types(spec, definitions),
                required=name in required and not has_default,
                default=defaults.get(name, spec.get("default")),
            )
        )
    return found


def _listing(flow: str, parameters: list[Parameter]) -> str:
    if not parameters:
        return f"{flow} takes no parameters."
    return f"Parameters of {flow}: " + ", ".join(p.describe() for p in parameters) + "."


def _convert(raw: str, types: tuple[str, ...]) -> Any:
    """``raw`` as the first type of ``types`` it reads as; ValueError when none."""
    if not types:  # no type declared: a JSON value if it reads as one, else the text
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    text = raw.strip()
    if "null" in types and text.lower() in _NULL:
        return None
    for kind in types:
        if kind == "string":
            return raw
        if kind == "integer" and _INTEGER.match(text):
            return int(text)
        if kind == "number":
            try:
                return int(text) if _INTEGER.match(text) else float(text)
            except ValueError:
                continue
        if kind == "boolean" and (switch := read_switch(text)) is not None:
            return switch
        if kind in ("array", "object"):
            try:
                value = json.loads(text)
            except ValueError:
                continue
            if isinstance(value, list if kind == "array" else dict):
                return value
    raise ValueError(" or ".join(types))


def check_rundate(value: Any, *, today: date, allow_future: bool, deployment: str) -> None:
    """A ``rundate`` is a real ``yyyy-mm-dd`` date, not in the future unless the deployment allows it."""
    if value is None:
        return
    text = str(value)
    parsed: date | None = None
    if _ISO_DATE.match(text):
        try:
            parsed = date.fromisoformat(text)
        except ValueError:
            parsed = None
    if parsed is None:
        raise ConfigError(
            f"--param rundate={text!r} is not a real date written yyyy-mm-dd.",
            hint="Write e.g. --param rundate=2026-11-21.",
        )
    if parsed > today and not allow_future:
        raise ConfigError(
            f"--param rundate={text} is in the future (today is {today.isoformat()}).",
            hint=f"Use today or an earlier date; a deployment that may run ahead carries the tag {FUTURE_TAG!r} "
            f"(add it to {deployment}'s tags and deploy again).",
        )


def convert(
    given: Mapping[str, str],
    *,
    schema: Mapping[str, Any] | None,
    defaults: Mapping[str, Any],
    deployment: str,
    tags: Iterable[str] = (),
    today: date | None = None,
) -> dict[str, Any]:
    """The parameters to submit for ``given`` (``--param`` texts), converted and checked by ``schema``."""
    parameters = schema_parameters(schema, defaults)
    by_name = {p.name: p for p in parameters}
    listing = _listing(deployment, parameters)
    unknown = [name for name in given if name not in by_name]
    if unknown:
        raise ConfigError(f"{deployment} has no parameter {', '.join(map(repr, unknown))}.", hint=listing)
    converted: dict[str, Any] = {}
    for name, raw in given.items():
        parameter = by_name[name]
        try:
            converted[name] = _convert(raw, parameter.types)
        except ValueError as error:
            raise ConfigError(
                f"--param {name}={raw!r} is not a valid {error} for {deployment}.", hint=listing
            ) from None
    missing = [p.name for p in parameters if p.required and p.name not in converted]
    if missing:
        raise ConfigError(f"{deployment} needs the parameter(s) {', '.join(missing)}.", hint=listing)
    if "rundate" in converted:
        check_rundate(
            converted["rundate"],
            today=today or date.today(),
            allow_future=FUTURE_TAG in set(tags),
            deployment=deployment,
        )
    return converted
