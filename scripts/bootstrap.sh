#!/usr/bin/env bash
# Install everything the kit needs into this repository: a virtual environment in .venv with the package,
# its dev tools (pytest, pre-commit, ruff, mypy, just), and a working `julia` (scripts/install-julia.sh).
# Python packages are installed at the exact versions of constraints.txt (the versions the gate passed with).
# Safe to re-run: what is already there is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "error: prefect-julia needs Python >= 3.11 ($PYTHON is $("$PYTHON" --version 2>&1))." >&2
    echo "  fix: install Python 3.11 or newer, or run with PYTHON=/path/to/python3.11" >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.prefect-julia-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
    echo "==> installing prefect-julia and its tools into .venv"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -c constraints.txt -e '.[dev]'
    touch "$stamp"
else
    echo "==> .venv is up to date"
fi

# An environment set to PREFECT_JULIA_DATABASE=postgresql runs a kit-managed cluster with the system's server.
if grep -qsE '^[[:space:]]*PREFECT_JULIA_DATABASE=["'"'"']?postgresql' envs/*.env \
    && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "==> installing the PostgreSQL server (an environment uses PREFECT_JULIA_DATABASE=postgresql)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if ! $sudo apt-get install -y --no-install-recommends postgresql >/dev/null; then
        echo "error: could not install the PostgreSQL server with apt-get." >&2
        echo "  fix: install it yourself (apt-get install postgresql) or set PREFECT_JULIA_POSTGRES_BIN" >&2
        exit 1
    fi
fi

echo "==> checking julia"
bash scripts/install-julia.sh
# Fresh Julia jobs start faster with a Julia image of the package: where none matches julia/, one builds in the
# background at the lowest CPU priority (a few minutes; `invoke status` shows it; PREFECT_JULIA_IMAGE=off: never).
.venv/bin/python -m prefect_julia.kit.julia.images --start || echo "note: no Julia image build started" >&2
echo "==> ready: activate with 'source .venv/bin/activate' (or call .venv/bin/invoke, .venv/bin/just)"
