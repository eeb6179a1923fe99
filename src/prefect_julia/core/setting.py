"""What a setting is, and the settings a flow run itself reads (the Julia bridge and datasets).

Every setting is declared once, as a :class:`Setting`: its name, its help text, its default and its type.
The kit's registry (``kit/environment/settings.py``) lists the ones below together with its own, resolves them per
environment and shows them in ``invoke env``; a flow run reads the ones below from its process environment
with :meth:`Setting.lookup` and friends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from prefect_julia.core.errors import ConfigError, PrefectJuliaError

#: A default that depends on the environment's name and on the settings resolved before it.
Derive = Callable[[str, Mapping[str, str]], str | None]
Kind = Literal["text", "port", "seconds", "path", "choice", "switch"]

#: The words a ``switch`` setting (and a boolean run parameter) reads as on, and as off (without case or blanks).
ON_WORDS = ("on", "true", "yes", "1")
OFF_WORDS = ("off", "false", "no", "0")


#: The environment whose derived defaults are the production ones (see :func:`per_environment`).
PROD = "prod"


def per_environment(*, prod: str, other: str) -> Derive:
    """A derived default: ``prod`` in the prod environment, ``other`` in every other one: dev, a declared
    environment such as staging, and every branch environment, whatever its base (a branch environment based on
    prod gets ``other`` too: it runs its own branch's code, on demand, beside the real prod)."""

    def derive(env: str, _values: Mapping[str, str]) -> str:
        return prod if env == PROD else other

    return derive


def from_where(where: str) -> str:
    """' (from WHERE)' after a value in a message when where it came from is known; else an empty string."""
    return f" (from {where})" if where else ""


def read_switch(text: str) -> bool | None:
    """``text`` as on (True) or off (False); None when it is neither."""
    word = text.strip().lower()
    return True if word in ON_WORDS else False if word in OFF_WORDS else None


@dataclass(frozen=True)
class Setting:
    """One declared setting. ``derive`` (when given) computes the kit's default for an environment."""

    name: str
    help: str
    default: str | None = None
    kind: Kind = "text"
    secret: bool = False
    derive: Derive | None = None
    #: The values a ``choice`` setting may take (compared without case or blanks).
    choices: tuple[str, ...] = ()

    def default_for(self, env: str, values: Mapping[str, str]) -> str | None:
        """The default in environment ``env``, given the values resolved so far."""
        return self.derive(env, values) if self.derive is not None else self.default

    def lookup(self, environ: Mapping[str, str]) -> str | None:
        """The value in a process environment (an empty value counts as unset), else the fixed default."""
        return environ.get(self.name, "").strip() or self.default

    def seconds(self, environ: Mapping[str, str], where: str = "") -> float:
        """The value as a number of seconds (a ``seconds`` setting)."""
        raw = self.lookup(environ)
        if raw is None:
            raise ConfigError(f"The setting {self.name} is not set.", hint=f"Set {self.name} to a number of seconds.")
        return parse_seconds(self.name, raw, where)

    def choose(self, raw: str | None, where: str = "", *, error: type[PrefectJuliaError] = ConfigError) -> str:
        """``raw`` (unset or blank: the default) as one of ``choices``; ``error`` naming the setting, where the
        value came from, and every choice, if it is none of them."""
        value = (raw or "").strip().lower() or (self.default or "")
        if value not in self.choices:
            raise error(
                f"{self.name}={raw!r}{from_where(where)} is not one of: {', '.join(self.choices)}.",
                hint=f"Set {self.name} to {' or '.join(self.choices)}: {self.help}.",
            )
        return value

    def switch(self, raw: str | None, where: str = "", *, error: type[PrefectJuliaError] = ConfigError) -> bool:
        """``raw`` (unset or blank: the default) as on or off; ``error`` naming the setting and where the value
        came from, if it is neither."""
        value = read_switch((raw or "").strip() or (self.default or ""))
        if value is None:
            raise error(
                f"{self.name}={raw!r}{from_where(where)} is neither on nor off.",
                hint=f"Set {self.name} to on or off: {self.help}.",
            )
        return value


def parse_seconds(name: str, raw: str, where: str = "") -> float:
    """``raw`` as a positive number of seconds; a ConfigError naming the setting (and its source) if not."""
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(
            f"{name}={raw!r}{from_where(where)} is not a positive number of seconds.",
            hint=f"Use e.g. {name}=120.",
        )
    return value


def parse_port(name: str, raw: str, where: str = "") -> int:
    """``raw`` as a TCP port; a ConfigError naming the setting and its source if not."""
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ConfigError(
            f"{name}={raw!r}{from_where(where)} is not a port number.",
            hint=f"Use a whole number from 1024 to 65535, e.g. {name}=4309.",
        )
    return int(raw)


# --- the settings a flow run reads ------------------------------------------------------------------------

JULIA_BIN = Setting("PREFECT_JULIA_BIN", "julia executable the bridge runs (default: `julia` on PATH)", kind="path")
JULIA_PROJECT = Setting(
    "PREFECT_JULIA_PROJECT",
    "Julia project the bridge runs jobs in (relative: to the repository)",
    kind="path",
    derive=lambda _env, _values: "julia",
)
JULIA_TIMEOUT = Setting(
    "PREFECT_JULIA_JULIA_TIMEOUT", "seconds a Julia job may run before it is killed", default="3600", kind="seconds"
)
DATA_BLOCK_LOCAL = Setting(
    "PREFECT_DATA_BLOCK_LOCAL",
    "block of the local datastore",
    derive=lambda _env, _values: "local-file-system/willowdata",
)
DATA_BLOCK_REMOTE = Setting("PREFECT_DATA_BLOCK_REMOTE", "block of the remote datastore")
DATASTORE_DEFAULT_TYPE = Setting(
    "PREFECT_DATASTORE_DEFAULT_TYPE", "datastore a Dataset uses when none is given", default="local"
)
JULIA_SESSION = Setting(
    "PREFECT_JULIA_SESSION",
    "fresh: a new julia per job; warm: jobs run in kept julia processes (packages stay loaded and compiled)",
    default="fresh",
    kind="choice",
    choices=("fresh", "warm"),
)
JULIA_SESSION_POOL = Setting(
    "PREFECT_JULIA_SESSION_POOL", "warm julia sessions kept at most (jobs that run at once)", default="2"
)
JULIA_SESSION_DIR = Setting(
    "PREFECT_JULIA_SESSION_DIR",
    "folder of the warm julia sessions (default: $PREFECT_HOME/julia-sessions)",
    kind="path",
)
JULIA_SESSION_PROGRAMS = Setting(
    "PREFECT_JULIA_SESSION_PROGRAMS",
    "folders (separated by `:`) a warm julia session also runs programs from; by default only the project's `jobs/`",
)
JULIA_IMAGE = Setting(
    "PREFECT_JULIA_IMAGE",
    "auto: start Julia jobs with the image `invoke julia-image` built, while it matches the Julia code; off: never",
    default="auto",
    kind="choice",
    choices=("auto", "off"),
)
JULIA_IMAGE_DIR = Setting(
    "PREFECT_JULIA_IMAGE_DIR",
    "folder of the built Julia images, shared by every checkout (default: ~/.cache/prefect-julia/images)",
    kind="path",
)
JULIA_LOG_CAP_BYTES = Setting(
    "PREFECT_JULIA_LOG_CAP_BYTES",
    "bytes of a Julia job's output sent to the run log (the rest is kept in a file)",
    default="1048576",
)
JULIA_API_PATIENCE = Setting(
    "PREFECT_JULIA_API_PATIENCE",
    "seconds a Julia job keeps retrying the Prefect API while the server is down or busy "
    "(refused, reset or timed-out connections, HTTP 502/503/504)",
    default="60",
    kind="seconds",
)

#: Read by the entry points (``cli/edge.py``): any value turns it on.
DEBUG = Setting("PREFECT_JULIA_DEBUG", "set to 1 to see the traceback of an unexpected error")

#: What a flow run reads, in the order ``invoke env`` shows them.
RUNTIME_SETTINGS: tuple[Setting, ...] = (
    JULIA_BIN,
    JULIA_PROJECT,
    JULIA_TIMEOUT,
    JULIA_SESSION,
    JULIA_SESSION_POOL,
    JULIA_SESSION_DIR,
    JULIA_SESSION_PROGRAMS,
    JULIA_IMAGE,
    JULIA_IMAGE_DIR,
    JULIA_LOG_CAP_BYTES,
    JULIA_API_PATIENCE,
    DATA_BLOCK_LOCAL,
    DATA_BLOCK_REMOTE,
    DATASTORE_DEFAULT_TYPE,
)
