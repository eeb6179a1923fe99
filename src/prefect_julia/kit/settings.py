"""Settings of an environment: each declared once, resolved from layered sources, each value with its source.

Precedence, lowest to highest: built-in defaults < the committed ``envs/<env>.env`` < the git-ignored
``envs/<env>.local.env`` (secrets and personal overrides) < the process environment. Files are read with
python-dotenv. Functions here take mappings and paths; only the edge reads ``os.environ``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv.parser import parse_stream

from prefect_julia.core.errors import ConfigError

#: Names that mark a value as secret: it is masked wherever settings are shown.
SECRET_NAME = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|AUTH|CREDENTIAL|PRIVATE)", re.IGNORECASE)

#: Set by ``invoke env --shell ENV``; process values then belong to that environment only.
ENV_MARKER = "PREFECT_JULIA_ENV"


class Source(enum.IntEnum):
    """Where a value came from, in order of precedence."""

    DEFAULT = 0
    COMMITTED = 1
    LOCAL = 2
    PROCESS = 3

    def describe(self, env: str) -> str:
        return {
            Source.DEFAULT: "default",
            Source.COMMITTED: f"envs/{env}.env",
            Source.LOCAL: f"envs/{env}.local.env",
            Source.PROCESS: "process environment",
        }[self]


@dataclass(frozen=True)
class Setting:
    """One declared setting. ``default`` gets the environment name and the values resolved so far."""

    name: str
    help: str
    default: Callable[[str, Mapping[str, str]], str | None]
    secret: bool = False


def _const(value: str | None) -> Callable[[str, Mapping[str, str]], str | None]:
    return lambda _env, _values: value


DEFAULT_PORTS = {"prod": "4300", "dev": "4309"}

#: The kit's settings, in resolution order (a default may use the values declared before it).
SETTINGS: tuple[Setting, ...] = (
    Setting("PREFECT_JULIA_HOST", "address the local server binds", _const("127.0.0.1")),
    Setting(
        "PREFECT_JULIA_PORT",
        "port of the environment's local server",
        lambda env, _v: DEFAULT_PORTS.get(env, "4309"),
    ),
    Setting(
        "PREFECT_JULIA_HOME",
        "PREFECT_HOME of the environment (relative: to the repository)",
        lambda env, _v: f".prefect/{env}",
    ),
    Setting(
        "PREFECT_API_URL",
        "API URL clients use",
        lambda _env, v: f"http://{v['PREFECT_JULIA_HOST']}:{v['PREFECT_JULIA_PORT']}/api",
    ),
    Setting("PREFECT_API_KEY", "API key of a remote or Cloud server (secret)", _const(None), secret=True),
    Setting("PREFECT_JULIA_HEALTH_TIMEOUT", "seconds to wait for a starting server to become healthy", _const("120")),
    Setting("PREFECT_JULIA_WORK_POOL", "process work pool of the environment", lambda env, _v: f"{env}-process"),
    Setting(
        "PREFECT_JULIA_DATA_ROOT",
        "root folder of the environment's data (relative: to the repository)",
        lambda env, _v: f"data/{env}",
    ),
    Setting("PREFECT_DATA_BLOCK_LOCAL", "block of the local datastore", _const("local-file-system/willowdata")),
    Setting("PREFECT_DATA_BLOCK_REMOTE", "block of the remote datastore", _const(None)),
    Setting("PREFECT_DATASTORE_DEFAULT_TYPE", "datastore a Dataset uses when none is given", _const("local")),
    Setting("PREFECT_JULIA_JULIA_TIMEOUT", "seconds a Julia job may run before it is killed", _const("3600")),
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


def mask(value: str) -> str:
    return "********" if value else ""


def is_secret(name: str) -> bool:
    setting = DECLARED.get(name)
    return bool(setting and setting.secret) or bool(SECRET_NAME.search(name))


def read_env_file(path: Path) -> dict[str, str]:
    """Read a dotenv file with python-dotenv; a malformed line is an error naming file and line."""
    if not path.exists():
        return {}
    values: dict[str, str] = {}
    with path.open(encoding="utf-8") as stream:
        for binding in parse_stream(stream):
            if binding.error or (binding.key is not None and binding.value is None):
                line = binding.original.string.rstrip("\n")
                raise ConfigError(
                    f"{path}:{binding.original.line}: cannot read line {line!r}.",
                    hint="Write settings as NAME=value (quotes allowed), comments start with '#'.",
                )
            if binding.key is not None and binding.value is not None:
                values[binding.key] = binding.value
    return values


def resolve(
    env: str,
    *,
    committed: Mapping[str, str],
    local: Mapping[str, str],
    process: Mapping[str, str],
) -> dict[str, Value]:
    """Resolve every declared setting, plus any extra name the files define, remembering sources.

    Process values override only when the process is not marked (``PREFECT_JULIA_ENV``) for another
    environment: after ``eval "$(invoke env --shell dev)"``, ``invoke server-up prod`` still gets prod.
    """
    marked = process.get(ENV_MARKER)
    foreign_process = bool(marked) and marked != env
    layers: list[tuple[Source, Mapping[str, str]]] = [(Source.COMMITTED, committed), (Source.LOCAL, local)]
    if not foreign_process:
        layers.append((Source.PROCESS, process))

    resolved: dict[str, Value] = {}
    plain: dict[str, str] = {}
    for setting in SETTINGS:
        found: Value | None = None
        for source, layer in layers:
            if setting.name in layer:
                found = Value(setting.name, layer[setting.name], source, setting.secret)
        if found is None:
            default = setting.default(env, plain)
            if default is None:
                continue
            note = (
                f"(process value ignored: exported for {marked})" if foreign_process and setting.name in process else ""
            )
            found = Value(setting.name, default, Source.DEFAULT, setting.secret, note)
        resolved[setting.name] = found
        plain[setting.name] = found.value
    for file_source, layer in layers[:2]:  # extra names come from the files only, not the whole process env
        for name, value in layer.items():
            if name in DECLARED:
                continue
            if not foreign_process and name in process:
                resolved[name] = Value(name, process[name], Source.PROCESS, is_secret(name))
            else:
                resolved[name] = Value(name, value, file_source, is_secret(name))
    return resolved
