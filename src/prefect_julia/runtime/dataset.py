"""Datasets: named data files in a hive-style layout under a Prefect file-system block.

The layout, defaults, validation and latest/dated selection match the Julia ``PrefectInterfaces.Dataset``;
both are checked against ``tests/vectors/dataset_paths.json``::

    {dataset_type}/{file_format}/dataset={name}/rundate={yyyy-mm-dd}/data.{ext}
    {dataset_type}/{file_format}/latest/dataset={name}/data.{ext}

Selection: ``latest`` on today's rundate reads the latest file and writes both (dated first, then latest);
``latest`` on another rundate reads and writes the latest file only; ``specific`` reads and writes the dated
file. The base comes from the block named by ``PREFECT_DATA_BLOCK_LOCAL`` or ``PREFECT_DATA_BLOCK_REMOTE``
(``slug/name``): a ``local-file-system`` block's basepath, or an ``s3-bucket`` block's bucket and folder
(``runtime/s3store.py``; one PUT per object, so readers see a whole object, old or new). Writes are atomic, and
the temporary file of a killed write (from Python or Julia) is removed by the next read or write.

Fallback: in an environment with a base (a branch environment based on dev), ``PREFECT_DATA_FALLBACK_ROOT`` is the
base's local datastore folder (same layout) and ``PREFECT_DATA_FALLBACK_NAME`` its name. A read of the ``local``
datastore (a local-file-system block) that finds no file in its own store reads the base's file, and logs
``Dataset "NAME" read from dev's data: PATH``; writes, and the sweep of stale temporary files, touch the own store
only. :meth:`Dataset.rundates` lists the union of both stores. A ``remote`` datastore, or an s3-bucket block, never
falls back.
"""

from __future__ import annotations

import csv
import io
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path, PurePosixPath

from prefect_julia.core.errors import ConfigError, PrefectJuliaError
from prefect_julia.core.files import sweep_stale_temps, write_atomic
from prefect_julia.core.setting import DATA_BLOCK_LOCAL, DATA_BLOCK_REMOTE, DATASTORE_DEFAULT_TYPE
from prefect_julia.runtime import datastore
from prefect_julia.runtime.s3store import ObjectMissing, S3Store

__all__ = [
    "DATASET_TYPES",
    "DATASTORE_TYPES",
    "RUNDATE_TYPES",
    "Dataset",
    "DatasetError",
    "DatasetMissing",
    "block_reference",
]

DATASTORE_TYPES = ("local", "remote")
DATASET_TYPES = ("extracts", "reports", "images")
RUNDATE_TYPES = ("latest", "specific")

DEFAULT_TYPE_VAR = DATASTORE_DEFAULT_TYPE.name
BLOCK_VARS = {"local": DATA_BLOCK_LOCAL.name, "remote": DATA_BLOCK_REMOTE.name}
SUPPORTED_BLOCK_SLUGS = ("local-file-system", "s3-bucket")

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FILE_FORMAT = re.compile(r"^[A-Za-z0-9]+(\.[A-Za-z0-9]+)*$")
_FORBIDDEN_IN_NAME = ("/", "\\", "..", "=")


class DatasetError(PrefectJuliaError):
    """A dataset's fields are invalid, or its data cannot be read or written. ``field`` names the culprit."""

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field


class DatasetMissing(DatasetError):
    """The file a dataset reads from does not exist. ``rundates`` lists the rundates that do."""

    def __init__(self, message: str, *, path: Path | str, rundates: list[str], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.rundates = rundates


# --- validation -------------------------------------------------------------------------------------------


def _is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc"


def _check_name(name: str) -> str:
    if not name or any(bad in name for bad in _FORBIDDEN_IN_NAME) or any(_is_control(c) for c in name):
        raise DatasetError(
            f"Invalid dataset_name {name!r}: it must be non-empty and contain none of / \\ .. = nor control characters",
            field="dataset_name",
            hint="Pick a plain name such as 'iris' or 'sales_summary-v2'.",
        )
    return name


def _check_choice(field: str, value: str, choices: tuple[str, ...], source: str = "") -> str:
    if value not in choices:
        where = f" (from {source})" if source else ""
        raise DatasetError(
            f"Invalid {field} {value!r}{where}: expected one of {', '.join(choices)}.",
            field=field,
        )
    return value


def _check_file_format(file_format: str) -> str:
    if not _FILE_FORMAT.match(file_format):
        raise DatasetError(
            f"Invalid file_format {file_format!r}: a file extension of letters and digits (e.g. 'csv', 'csv.gz').",
            field="file_format",
        )
    return file_format


def _parse_rundate(rundate: date | str | None, today: date) -> date:
    if rundate is None:
        return today
    if isinstance(rundate, date):
        return rundate
    if _ISO_DATE.match(rundate):
        try:
            return date.fromisoformat(rundate)
        except ValueError:
            pass
    raise DatasetError(
        f"Invalid rundate {rundate!r}: expected a real date written yyyy-mm-dd (e.g. '2024-02-29').",
        field="rundate",
    )


def _default_datastore_type(env: Mapping[str, str]) -> tuple[str, str]:
    """The default datastore type and where it came from."""
    value = env.get(DEFAULT_TYPE_VAR, "")
    return (value, DEFAULT_TYPE_VAR) if value else (str(DATASTORE_DEFAULT_TYPE.default), "")


# --- blocks -----------------------------------------------------------------------------------------------


def block_reference(datastore_type: str, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The ``(block_type_slug, block_name)`` serving ``datastore_type``, from ``PREFECT_DATA_BLOCK_*``."""
    env = os.environ if env is None else env
    var = BLOCK_VARS[_check_choice("datastore_type", datastore_type, DATASTORE_TYPES)]
    value = env.get(var, "").strip()
    if not value:
        raise ConfigError(
            f"{var} is not set, so the {datastore_type} datastore has no block.",
            hint=f"{datastore.settings_hint(env)}; or set {var}=local-file-system/<block name>.",
        )
    slug, sep, name = value.partition("/")
    if not sep or not slug or not name or "/" in name:
        raise ConfigError(
            f"{var}={value!r} is malformed: expected 'block-type-slug/block-name'.",
            hint=f"Set {var}=local-file-system/<block name>.",
        )
    if slug not in SUPPORTED_BLOCK_SLUGS:
        raise ConfigError(
            f"{var}={value!r} names a {slug!r} block; datasets support {', '.join(SUPPORTED_BLOCK_SLUGS)}.",
            hint=f"Point {var} at a local-file-system or s3-bucket block.",
        )
    return slug, name


# --- the dataset ------------------------------------------------------------------------------------------


class Dataset:
    """A named data file, partitioned by rundate, under the block of a datastore type.

    ``today`` and ``env`` default to the real date and ``os.environ``; pass them for tests. ``basepath``
    skips loading the block from the Prefect server.
    """

    def __init__(
        self,
        dataset_name: str,
        *,
        datastore_type: str | None = None,
        dataset_type: str = "extracts",
        file_format: str = "csv",
        rundate: date | str | None = None,
        rundate_type: str | None = None,
        today: date | None = None,
        env: Mapping[str, str] | None = None,
        basepath: Path | str | None = None,
        store: S3Store | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self.today: date = today or date.today()
        self.dataset_name: str = _check_name(dataset_name)
        if datastore_type is None:
            datastore_type, source = _default_datastore_type(env)
        else:
            source = ""
        self.datastore_type: str = _check_choice("datastore_type", datastore_type, DATASTORE_TYPES, source)
        self.dataset_type: str = _check_choice("dataset_type", dataset_type, DATASET_TYPES)
        self.file_format: str = _check_file_format(file_format)
        self.rundate: date = _parse_rundate(rundate, self.today)
        if rundate_type is None:
            rundate_type = "latest" if self.rundate == self.today else "specific"
        self.rundate_type: str = _check_choice("rundate_type", rundate_type, RUNDATE_TYPES)
        self._env: Mapping[str, str] = env
        self._basepath: Path | None = Path(basepath).resolve() if basepath is not None else None
        self._store: S3Store | None = store

    def __repr__(self) -> str:
        return (
            f"Dataset(dataset_name={self.dataset_name!r}, datastore_type={self.datastore_type!r}, "
            f"dataset_type={self.dataset_type!r}, file_format={self.file_format!r}, "
            f"rundate={self.rundate.isoformat()!r}, rundate_type={self.rundate_type!r})"
        )

    # -- relative paths (pure) --

    @property
    def extension(self) -> str:
        """The data file's extension: the file format."""
        return self.file_format

    @property
    def dataset_dir(self) -> PurePosixPath:
        """The folder holding this dataset's dated partitions, relative to the basepath."""
        return PurePosixPath(self.dataset_type, self.file_format, f"dataset={self.dataset_name}")

    @property
    def dated_path(self) -> PurePosixPath:
        """The dated file, relative to the basepath."""
        return self.dataset_dir / f"rundate={self.rundate.isoformat()}" / f"data.{self.extension}"

    @property
    def latest_path(self) -> PurePosixPath:
        """The latest file, relative to the basepath."""
        return PurePosixPath(
            self.dataset_type,
            self.file_format,
            "latest",
            f"dataset={self.dataset_name}",
            f"data.{self.extension}",
        )

    @property
    def read_path(self) -> PurePosixPath:
        """The file :meth:`read_bytes` reads, relative to the basepath."""
        return self.latest_path if self.rundate_type == "latest" else self.dated_path

    @property
    def write_paths(self) -> list[PurePosixPath]:
        """The files :meth:`write_bytes` writes, in order, relative to the basepath."""
        if self.rundate_type == "specific":
            return [self.dated_path]
        if self.rundate == self.today:
            return [self.dated_path, self.latest_path]
        return [self.latest_path]

    # -- absolute paths --

    def remote(self) -> S3Store | None:
        """The S3 store when this datastore's block is an ``s3-bucket`` block (loaded once), else None."""
        if self._store is None and self._basepath is None:
            slug, name = block_reference(self.datastore_type, self._env)
            if slug == "s3-bucket":
                from prefect_julia.runtime.s3store import load_store

                self._store = load_store(name)
        return self._store

    def basepath(self) -> Path:
        """The absolute basepath of this datastore's local-file-system block (loaded from the server once)."""
        if self.remote() is not None:
            raise DatasetError(
                f"The {self.datastore_type} datastore of {self.dataset_name!r} is an s3-bucket block: it has no "
                "local basepath.",
                hint="Use location() for its s3:// address, or read_bytes()/write_bytes() for its data.",
            )
        if self._basepath is None:
            self._basepath = datastore.load_block_basepath(*block_reference(self.datastore_type, self._env))
        return self._basepath

    def fallback(self) -> datastore.Fallback | None:
        """The base's store a read of this dataset falls back to: only for the ``local`` datastore of a
        local-file-system block, and only when it is another folder than the own store."""
        if self.datastore_type != "local":
            return None
        found = datastore.data_fallback(self._env)
        if found is None or self.remote() is not None or found.root == self.basepath():
            return None
        return found

    def path(self) -> Path:
        """The absolute path this dataset reads from (local datastores): the own store's file, or the base's
        when only the base has it (logged; see :meth:`fallback`)."""
        own = self.basepath() / self.read_path
        fallback = self.fallback()
        if fallback is not None and not own.is_file() and (fallback.root / self.read_path).is_file():
            datastore.log_fallback(self.dataset_name, fallback, fallback.root / self.read_path)
            return fallback.root / self.read_path
        return own

    def location(self) -> str:
        """Where this dataset reads from: an absolute path, or ``s3://bucket/folder/...``."""
        store = self.remote()
        return store.location(str(self.read_path)) if store is not None else str(self.path())

    def rundates(self, *, fallback: bool = True) -> list[str]:
        """The rundates (``yyyy-mm-dd``) that have a dated file for this dataset, oldest first: with a
        :meth:`fallback`, those of the own store and the base's together (``fallback=False``: the own store's)."""
        store = self.remote()
        if store is not None:
            data = f"data.{self.extension}"
            found = set()
            for key in store.keys(f"{self.dataset_dir}/rundate="):
                parent, _, name = key.rpartition("/")
                if name == data and "/" not in parent.removeprefix(f"{self.dataset_dir}/"):
                    found.add(parent.rsplit("rundate=", 1)[1])
            return sorted(found)
        data = f"data.{self.extension}"
        found_local = datastore.local_rundates(self.basepath() / self.dataset_dir, data)
        base = self.fallback() if fallback else None
        if base is not None:
            found_local |= datastore.local_rundates(base.root / self.dataset_dir, data)
        return sorted(found_local)

    # -- reading and writing --

    def read_bytes(self) -> bytes:
        """The dataset's bytes (from the base's store when only it has them: see :meth:`fallback`);
        :class:`DatasetMissing` names where it looked and the rundates that exist."""
        store = self.remote()
        if store is not None:
            try:
                return store.read(str(self.read_path))
            except ObjectMissing:
                raise self._missing(store.location(str(self.read_path))) from None
        where = self.basepath() / self.read_path
        for relative in {self.read_path, *self.write_paths}:
            sweep_stale_temps(self.basepath() / relative)  # left by a killed write: never outlives a read
        try:
            return where.read_bytes()
        except FileNotFoundError:
            pass
        fallback = self.fallback()
        if fallback is not None:
            base_file = fallback.root / self.read_path
            try:
                data = base_file.read_bytes()  # the base's store is read, never swept nor written
            except FileNotFoundError:
                raise self._missing(where, base_file) from None
            datastore.log_fallback(self.dataset_name, fallback, base_file)
            return data
        raise self._missing(where) from None

    def _missing(self, where: Path | str, base_file: Path | None = None) -> DatasetMissing:
        """The error of a read that found no file (``base_file``: where the base's store was looked at too)."""
        rundates = self.rundates()
        have = ", ".join(rundates) if rundates else "none"
        also = ""
        fallback = self.fallback() if base_file is not None else None
        if fallback is not None:
            also = f" nor in {fallback.name}'s data at {base_file}"
        elif self.remote() is not None and datastore.data_fallback(self._env) is not None:
            also = f" ({datastore.FALLBACK_ROOT_VAR} applies to local-file-system datastores only)"
        return DatasetMissing(
            f"Dataset {self.dataset_name!r} has no {self.rundate_type} file at {where}{also}. "
            f"Rundates stored for it: {have}.",
            path=where,
            rundates=rundates,
            hint="Write it first, or pick one of the existing rundates with rundate_type='specific'.",
        )

    def read_text(self, encoding: str = "utf-8") -> str:
        """The dataset decoded as text."""
        return self.read_bytes().decode(encoding)

    def write_bytes(self, data: bytes) -> list[Path | str]:
        """Write ``data`` whole to every write path (dated first, then latest); return the locations."""
        store = self.remote()
        written: list[Path | str] = []
        for relative in self.write_paths:
            if store is not None:
                written.append(store.write(str(relative), data))
                continue
            target = self.basepath() / relative
            write_atomic(target, data)
            written.append(target)
        return written

    def write_text(self, text: str, encoding: str = "utf-8") -> list[Path | str]:
        """Write ``text`` encoded; see :meth:`write_bytes`."""
        return self.write_bytes(text.encode(encoding))

    def read_csv(self) -> list[dict[str, str]]:
        """The dataset parsed as CSV with a header row."""
        return list(csv.DictReader(io.StringIO(self.read_text(), newline="")))

    def write_csv(self, rows: Iterable[Mapping[str, object]], fieldnames: list[str]) -> list[Path | str]:
        """Write ``rows`` as CSV with a header of ``fieldnames``; see :meth:`write_bytes`."""
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=fieldnames, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return self.write_text(buffer.getvalue())
