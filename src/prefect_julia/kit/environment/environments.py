"""Environments: which one a git branch uses, and everything an environment resolves to.

The environments and the branch mapping are data (``envs/<name>.env``, ``envs/branches.toml``: kit/environment/
branches.py); a branch environment is recorded once for the whole repository (kit/environment/registry.py). An
:class:`Environment` carries its name, base, port, ``PREFECT_HOME``, URLs, file locations and the resolved settings
with their sources.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from prefect_julia.core import gitrepo
from prefect_julia.core.errors import CommandFailed, ConfigError, PrefectJuliaError
from prefect_julia.core.processes import port_is_free
from prefect_julia.core.setting import JULIA_PROJECT, Setting, parse_port, parse_seconds
from prefect_julia.kit.environment import registry
from prefect_julia.kit.environment.branches import (
    BRANCHES_FILE,
    BranchMapping,
    declared_environments,
    load_branch_mapping,
)
from prefect_julia.kit.environment.home import Home
from prefect_julia.kit.environment.settings import (
    BRANCH_PORTS,
    CODE_SOURCE,
    DECLARED,
    ENV_MARKER,
    READ_FROM,
    SETTINGS,
    Source,
    Value,
    api_url,
    read_env_file,
    resolve,
    server_url,
)

#: What a flow run and a Julia job read when a file is missing from their data root: the environment reads
#: fall back to (``PREFECT_JULIA_READ_FROM``), by data root and by name.
FALLBACK_ROOT = "PREFECT_DATA_FALLBACK_ROOT"
FALLBACK_NAME = "PREFECT_DATA_FALLBACK_NAME"
#: Settings of a base that belong to its own server, never to a branch environment based on it.
NOT_INHERITED = frozenset(
    {
        "PREFECT_API_URL",
        "PREFECT_API_AUTH_STRING",
        "PREFECT_API_DATABASE_CONNECTION_URL",
        "PREFECT_JULIA_DATABASE_PORT",
        "PREFECT_JULIA_DATABASE_PASSWORD",
    }
)
#: The placeholder (and exported variable) naming the folder a run executes.
CODE_DIR_SETTING = "PREFECT_JULIA_CODE_DIR"
#: Records the commit of the worktree the deployments point at, inside ``<home>/code``.
DEPLOYED_FILE = "DEPLOYED"
#: The Prefect profiles file ``invoke profile-sync`` writes, one profile per environment.
PROFILES_FILE = Path("profiles/profiles.toml")


def current_branch(root: Path) -> str | None:
    """The checked-out branch, or None when ``root`` is not in a git repository (or HEAD is detached)."""
    try:
        return gitrepo.current_branch(root)
    except CommandFailed:  # git itself is missing
        return None


@dataclass(frozen=True)
class Environment:
    """One environment, fully resolved."""

    name: str
    root: Path
    values: Mapping[str, Value] = field(repr=False)
    process: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: The environment a branch environment is based on (None: a declared environment).
    base: str | None = None
    #: The git branch of a branch environment.
    branch: str | None = None
    #: A branch environment whose checkout (a worktree) was removed: the recorded folder. Its settings are then
    #: those of the checkout that asked (its home, data root and port do not depend on the checkout).
    removed_checkout: Path | None = None

    @property
    def declares(self) -> str:
        """Whose declarations (deployments, blocks, limits, notifications) apply: the base's, or its own."""
        return self.base or self.name

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.values.get(name)
        return value.value if value else default

    def lookup(self, name: str) -> str | None:
        """A setting, or else a variable of the process environment (for names no file declares, e.g. secrets)."""
        found = self.get(name)
        if found is None and self.process.get(ENV_MARKER, self.name) == self.name:
            found = self.process.get(name)
        return found or None

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise ConfigError(
                f"The setting {name} of environment {self.name!r} is not set.",
                hint=f"Add {name}=... to envs/{self.name}.local.env (git-ignored) or export it.",
            )
        return value

    def _path(self, name: str) -> Path:
        path = Path(self.require(name)).expanduser()
        return path if path.is_absolute() else self.root / path

    @property
    def host(self) -> str:
        return self.require("PREFECT_JULIA_HOST")

    def _source(self, name: str) -> str:
        value = self.values.get(name)
        return value.source.describe(self.name, self.base) if value else ""

    def _set_or_default(self, setting: Setting) -> str | None:
        """The setting's value; a blank one (``NAME=`` in a file) is the environment's default, as if the line
        were not there."""
        raw = self.get(setting.name)
        if (raw or "").strip():
            return raw
        return setting.default_for(self.name, {name: value.value for name, value in self.values.items()})

    def choice(self, setting: Setting, *, error: type[PrefectJuliaError] = ConfigError) -> str:
        """A ``choice`` setting's value (blank: the environment's default), checked against its choices."""
        return setting.choose(self._set_or_default(setting), self._source(setting.name), error=error)

    def switch(self, setting: Setting, *, error: type[PrefectJuliaError] = ConfigError) -> bool:
        """A ``switch`` setting's value (blank: the environment's default): on (True) or off (False)."""
        return setting.switch(self._set_or_default(setting), self._source(setting.name), error=error)

    def seconds(self, name: str) -> float:
        """A ``seconds`` setting as a number."""
        return parse_seconds(name, self.require(name), self._source(name))

    @property
    def port(self) -> int:
        return parse_port("PREFECT_JULIA_PORT", self.require("PREFECT_JULIA_PORT"), self._source("PREFECT_JULIA_PORT"))

    @property
    def home(self) -> Path:
        return self._path("PREFECT_JULIA_HOME")

    @property
    def data_root(self) -> Path:
        return self._path("PREFECT_JULIA_DATA_ROOT")

    @property
    def api_url(self) -> str:
        return self.require("PREFECT_API_URL").rstrip("/")

    @property
    def ui_url(self) -> str:
        return server_url(self.host, self.port)

    @property
    def local_api_url(self) -> str:
        """The API URL of the local server this kit runs (may differ from ``api_url`` for a remote prod)."""
        return api_url(self.ui_url)

    @property
    def local_file(self) -> Path:
        """``envs/<name>.local.env``, the settings the kit writes (auth string, database): a branch environment's
        is in the clone's main working tree, beside its home, so it outlives a removed worktree."""
        return self.shared_root / "envs" / f"{self.name}.local.env"

    @property
    def shared_root(self) -> Path:
        """The checkout holding the folders a branch environment shares with its clone: its local settings, and the
        base data its reads fall back to (the clone's main working tree, kit/environment/registry.py); a declared
        environment's own checkout."""
        return registry.shared_checkout(self.root) if self.branch else self.root

    @property
    def files(self) -> Home:
        """The files the kit keeps in this environment's PREFECT_HOME."""
        return Home(self.home)

    @property
    def health_timeout(self) -> float:
        return self.seconds("PREFECT_JULIA_HEALTH_TIMEOUT")

    @property
    def julia_project(self) -> Path:
        return self._path(JULIA_PROJECT.name)

    def prefect_settings(self) -> dict[str, str]:
        """The Prefect settings a server or client of this environment runs with (the profile's content)."""
        settings = {
            "PREFECT_API_URL": self.api_url,
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_API_HOST": self.host,
            "PREFECT_SERVER_API_PORT": str(self.port),
            "PREFECT_UI_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        auth_string = self.get("PREFECT_API_AUTH_STRING")
        if auth_string:
            settings["PREFECT_API_AUTH_STRING"] = auth_string
        return settings

    def exports(self, *, secrets: bool) -> dict[str, str]:
        """What a process of this environment gets on top of its parent's environment: the Prefect settings,
        every resolved setting (secrets only when ``secrets``), the environment marker and the profiles file.
        ``invoke env --shell`` prints it without secrets; servers, workers and flow runs get it whole."""
        env = {name: value.value for name, value in self.values.items() if secrets or not value.secret}
        env.update(self.prefect_settings())
        env[JULIA_PROJECT.name] = str(self.julia_project)
        env[ENV_MARKER] = self.name
        env["PREFECT_PROFILES_PATH"] = str(self.root / PROFILES_FILE)
        if self.code_dir is not None:
            env[CODE_DIR_SETTING] = str(self.code_dir)
        fallback = self.reads_from()
        if fallback is not None:
            env[FALLBACK_ROOT] = str(fallback.data_root.resolve())
            env[FALLBACK_NAME] = fallback.name
        return env

    def reads_from(self) -> Environment | None:
        """The environment reads fall back to (``PREFECT_JULIA_READ_FROM``); None when there is none. A branch
        environment's is resolved in the clone's main working tree, where its own data lives too: a worktree's
        ``data/dev`` is empty, the main checkout's holds what dev's runs wrote."""
        raw = (self.get(READ_FROM.name) or "").strip() or "base"
        target = None if raw == "none" else self.base if raw == "base" else raw
        if target is None or target == self.name:
            return None
        try:
            return resolve_environment(target, self.shared_root, self.process)
        except ConfigError as error:
            raise ConfigError(
                f"{READ_FROM.name}={raw!r} ({self._source(READ_FROM.name)}): {error.message}",
                hint=f"Set {READ_FROM.name} to base, none or a declared environment's name.",
            ) from None

    # --- the code its runs execute (how it gets there: kit/declarations/codesource.py) ---------------------------

    @property
    def code_source(self) -> str:
        """Where runs get their code: ``tree`` (the checkout), ``worktree`` (the deployed commit) or ``git``."""
        return self.choice(CODE_SOURCE)

    @property
    def deployed_from_ci(self) -> bool:
        """True when the environment is deployed by CI from git (``.github/workflows/deploy.yml``)."""
        return self.code_source == "git"

    @property
    def deployed_commit(self) -> str | None:
        """The commit whose worktree the environment's deployments run, or None before the first deploy."""
        path = self.files.code / DEPLOYED_FILE
        text = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
        return text or None

    @property
    def code_dir(self) -> Path | None:
        """The folder runs execute (None: a worktree source with nothing deployed yet, or git)."""
        kind = self.code_source
        if kind == "tree":
            return self.root
        commit = self.deployed_commit if kind == "worktree" else None
        return self.files.code / commit if commit else None

    def process_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` plus everything a Prefect process of this environment needs, secrets included."""
        env = {k: v for k, v in base.items() if k != "PREFECT_PROFILE"}
        env.update(self.exports(secrets=True))
        return env


def private_local_file(path: Path) -> str | None:
    """Keep a local settings file owner-only: a group/world-readable one is made 0600 (said in the note
    returned); one that others may write, or that cannot be fixed, is refused."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None
    if not mode & 0o077:
        return None
    shown = f"{path.parent.name}/{path.name}"
    if mode & 0o002:
        raise ConfigError(
            f"{shown} may be changed by other users (mode {mode:04o}); its settings are not trusted.",
            hint=f"Check its content, then `chmod 600 {path}`.",
        )
    try:
        os.chmod(path, 0o600)
    except OSError:
        raise ConfigError(
            f"{shown} holds secrets but other users may read it (mode {mode:04o}).",
            hint=f"chmod 600 {path}",
        ) from None
    return f"{shown} was readable by other users (mode {mode:04o}): made it 0600. Change secrets it held if they may have been read."


def _local_values(root: Path, name: str, notes: list[str] | None) -> dict[str, str]:
    local = root / "envs" / f"{name}.local.env"
    note = private_local_file(local)
    if note and notes is not None:
        notes.append(note)
    return read_env_file(local)


def _finish(env: Environment) -> Environment:
    env.port  # noqa: B018 - validate early: a bad port is reported before anything starts
    return env


def _declared(name: str, root: Path, environ: Mapping[str, str], notes: list[str] | None) -> Environment:
    values = resolve(
        name,
        committed=read_env_file(root / "envs" / f"{name}.env"),
        local=_local_values(root, name, notes),
        process=environ,
    )
    return _finish(Environment(name=name, root=root, values=values, process=dict(environ)))


def _branch_values(entry: registry.Entry, shared: Path) -> dict[str, str]:
    """What a branch environment has of its own: its recorded port, its work pool, its home and data root (in
    the clone's main working tree ``shared``: a removed worktree takes neither its data nor its pid files)."""
    return {
        "PREFECT_JULIA_PORT": str(entry.port),
        "PREFECT_JULIA_HOME": str(shared / ".prefect" / entry.name),
        "PREFECT_JULIA_DATA_ROOT": str(shared / "data" / entry.name),
        "PREFECT_JULIA_WORK_POOL": f"{entry.name}-process",
    }


def branch_environment(
    entry: registry.Entry, environ: Mapping[str, str], notes: list[str] | None = None
) -> Environment:
    """The recorded branch environment ``entry``, resolved in its checkout: its base's committed and local
    settings, then its own (recorded values, ``envs/<name>.local.env`` of the main working tree, the process)."""
    root = Path(entry.checkout)
    shared = registry.shared_checkout(root)

    def inherited(values: Mapping[str, str]) -> dict[str, str]:
        return {k: v for k, v in values.items() if k not in NOT_INHERITED}

    base = (
        entry.base,
        inherited(read_env_file(root / "envs" / f"{entry.base}.env")),
        inherited(_local_values(root, entry.base, notes)),
    )
    values = resolve(
        entry.name,
        committed=read_env_file(root / "envs" / f"{entry.name}.env"),
        local=_local_values(shared, entry.name, notes),
        process=environ,
        base=base,
        recorded=_branch_values(entry, shared),
    )
    env = Environment(entry.name, root, values, dict(environ), base=entry.base, branch=entry.branch)
    return _finish(env)


def _port_range(base: Environment) -> range:
    raw = base.require(BRANCH_PORTS.name)
    first, _, last = raw.partition("-")
    if not (first.strip().isdigit() and last.strip().isdigit() and 1024 <= int(first) <= int(last) <= 65535):
        raise ConfigError(
            f"{BRANCH_PORTS.name}={raw!r} ({base._source(BRANCH_PORTS.name)}) is not a range of ports.",
            hint=f"Write it as FIRST-LAST, e.g. {BRANCH_PORTS.name}=4400-4499.",
        )
    return range(int(first), int(last) + 1)


def claim_branch(
    root: Path, branch: str, base: str, environ: Mapping[str, str], notes: list[str] | None = None
) -> Environment:
    """The environment of ``branch`` in the checkout ``root``, based on ``base``: recorded on first use with a
    name made from the branch and a free port (nothing to write by hand)."""
    declared = declared_environments(root)
    based = _declared(base, root, environ, notes)
    reserved = {_declared(name, root, environ, None).port for name in declared}
    entry = registry.claim(
        root,
        branch,
        base=base,
        declared=declared,
        ports=_port_range(based),
        reserved_ports=reserved,
        is_free=lambda port: port_is_free(based.host, port),
    )
    return branch_environment(entry, environ, notes)


def _unknown(name: str, root: Path) -> ConfigError:
    known = [*declared_environments(root), *(entry.name for entry in registry.entries(root))]
    return ConfigError(
        f"Unknown environment {name!r}.",
        hint=f"Use one of: {', '.join(known)} (or add envs/{name}.env to declare it)."
        if name and name[0].isalpha()
        else f"Use one of: {', '.join(known)}.",
    )


def resolve_environment(
    name: str | None,
    root: Path,
    environ: Mapping[str, str],
    *,
    notes: list[str] | None = None,
) -> Environment:
    """Resolve environment ``name`` (default: the current branch's) under ``root``.

    ``name`` is a declared environment or a recorded branch environment (resolved in its own checkout).
    ``notes`` collects what a person should hear, e.g. that there is no git repository and dev is used.
    """
    if name is None:
        branch = current_branch(root)
        if branch is None:
            name = "dev"
            if notes is not None:
                notes.append(f"{root} is not in a git repository (or HEAD is detached): using the dev environment.")
        else:
            mapping = load_branch_mapping(root)
            name = mapping.environment_for(branch)
            if name is None:
                return claim_branch(root, branch, mapping.base or "dev", environ, notes)
    if name in declared_environments(root):
        return _declared(name, root, environ, notes)
    entry = registry.find(root, name)
    if entry is None:
        raise _unknown(name, root)
    return branch_environment(entry, environ, notes)


def recorded_environment(root: Path, entry: registry.Entry, environ: Mapping[str, str]) -> Environment:
    """The recorded branch environment ``entry``; one whose checkout is gone (a removed worktree) is resolved
    with the settings of ``root`` and says so (``removed_checkout``), so its server and worker are still found."""
    if (Path(entry.checkout) / "envs").is_dir():
        return branch_environment(entry, environ)
    moved = branch_environment(replace(entry, checkout=str(root.resolve())), environ)
    return replace(moved, removed_checkout=Path(entry.checkout))


def all_environments(root: Path, environ: Mapping[str, str], *, removed: bool = False) -> list[Environment]:
    """The declared environments, then every recorded branch environment whose checkout is still there (and,
    with ``removed``, those whose checkout was removed: ``removed_checkout`` set)."""
    found = [_declared(name, root, environ, None) for name in declared_environments(root)]
    for entry in registry.entries(root):
        if removed or (Path(entry.checkout) / "envs").is_dir():
            found.append(recorded_environment(root, entry, environ))
    return found


def describe_sources(env: Environment) -> list[tuple[str, str, str, str]]:
    """(name, shown value, source, help) rows for ``invoke env``: every declared setting (set or not) and the
    extra names the files define; secrets masked."""
    rows = []
    for setting in SETTINGS:
        value = env.values.get(setting.name)
        if value is None:
            rows.append((setting.name, "", "not set", setting.help))
    for value in env.values.values():
        source = value.source.describe(env.name, env.base)
        if value.note:
            source = f"{source} {value.note}"
        declared = DECLARED.get(value.name)
        rows.append((value.name, value.shown(), source, declared.help if declared else ""))
    order = {s.name: i for i, s in enumerate(SETTINGS)}
    return sorted(rows, key=lambda row: order.get(row[0], len(order)))


__all__ = [
    "BRANCHES_FILE",
    "BranchMapping",
    "Environment",
    "Source",
    "all_environments",
    "branch_environment",
    "claim_branch",
    "current_branch",
    "declared_environments",
    "describe_sources",
    "load_branch_mapping",
    "recorded_environment",
    "resolve_environment",
]
