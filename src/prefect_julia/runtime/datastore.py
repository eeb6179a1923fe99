"""Where a Dataset's data lives: the datastore block its settings name, that block's folder on the server, and
the base environment's data a read falls back to (``runtime/dataset.py`` holds the layout and the reads and
writes).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from prefect_julia.core.errors import ConfigError, ServerError

__all__ = ["Fallback", "data_fallback", "load_block_basepath", "missing_block_hint", "settings_hint"]

#: The base environment's local datastore folder a read falls back to, and that environment's name (for the log).
FALLBACK_ROOT_VAR = "PREFECT_DATA_FALLBACK_ROOT"
FALLBACK_NAME_VAR = "PREFECT_DATA_FALLBACK_NAME"

_LOGGER = logging.getLogger("prefect_julia.dataset")

#: Set in every process of a kit environment (``invoke env --shell``, servers, workers, flow runs): its name.
ENV_NAME_VAR = "PREFECT_JULIA_ENV"


def env_word(env: Mapping[str, str]) -> str:
    """The environment's name for a hint (``ENV`` when this process belongs to none)."""
    return env.get(ENV_NAME_VAR, "").strip() or "ENV"


def settings_hint(env: Mapping[str, str]) -> str:
    """How a process outside a flow run gets its environment's settings."""
    return f'Outside a flow run, export the environment\'s settings first: eval "$(invoke env --shell {env_word(env)})"'


def missing_block_hint(env: Mapping[str, str]) -> str:
    """The fix of a block the server does not have: the kit's command that creates declared blocks."""
    word = env_word(env)
    return f"Declare it in envs/{word}.blocks.toml and create it with `invoke blocks {word}`."


def load_block_basepath(slug: str, name: str) -> Path:
    """Load the file-system block ``slug/name`` from the Prefect server and return its absolute basepath."""
    from prefect.filesystems import LocalFileSystem
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        raise ServerError(
            f"Cannot load block {slug}/{name}: PREFECT_API_URL is not set.",
            hint=f"{settings_hint(os.environ)} (and start its server: `invoke server-up {env_word(os.environ)}`).",
        )
    try:
        loaded = LocalFileSystem.load(name, _sync=True)  # type: ignore[call-arg]
    except ValueError as error:
        raise ConfigError(
            f"Block {slug}/{name} was not found on the Prefect server: {error}",
            hint=missing_block_hint(os.environ),
        ) from error
    except Exception as error:  # httpx / connection errors: the server is not reachable
        raise ServerError(
            f"Cannot load block {slug}/{name} from the Prefect server: {error}",
            hint="Check that the server at PREFECT_API_URL is running.",
        ) from error
    if not isinstance(loaded, LocalFileSystem):
        raise ServerError(f"Loading block {slug}/{name} returned {type(loaded).__name__}, not a block.")
    block = loaded
    if not block.basepath:
        raise ConfigError(f"Block {slug}/{name} has no basepath.", hint="Save the block with a basepath.")
    return Path(block.basepath).expanduser().resolve()


# --- the base's data ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fallback:
    """The base environment's local datastore: its folder and its name."""

    root: Path
    name: str


def data_fallback(env: Mapping[str, str]) -> Fallback | None:
    """The fallback named by ``PREFECT_DATA_FALLBACK_ROOT``/``_NAME``; None when the root is unset or empty."""
    raw = env.get(FALLBACK_ROOT_VAR, "").strip()
    if not raw:
        return None
    root = Path(raw).expanduser()
    if not root.is_absolute():
        raise ConfigError(
            f"{FALLBACK_ROOT_VAR}={raw!r} is not an absolute folder.",
            hint=f"Set {FALLBACK_ROOT_VAR} to the base environment's datastore folder, or leave it empty.",
        )
    return Fallback(root.resolve(), env.get(FALLBACK_NAME_VAR, "").strip() or "the base environment")


def log_fallback(dataset_name: str, fallback: Fallback, path: Path) -> None:
    """Say in the run log (or this module's log outside a run) that a read used the base's data."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    logger: logging.Logger | logging.LoggerAdapter[logging.Logger]
    try:
        logger = get_run_logger()
    except MissingContextError:
        logger = _LOGGER
    logger.info(
        "Dataset \"%s\" read from %s's data: %s (not in this environment's store)", dataset_name, fallback.name, path
    )


def local_rundates(folder: Path, data: str) -> set[str]:
    """The rundates under a local dataset folder that hold ``data``."""
    if not folder.is_dir():
        return set()
    return {
        child.name.removeprefix("rundate=")
        for child in folder.iterdir()
        if child.name.startswith("rundate=") and (child / data).is_file()
    }
