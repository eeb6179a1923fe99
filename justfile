# prefect-julia: every recipe delegates to `invoke` (tasks.py). `just` alone lists them.
# ENV is dev or prod; left out, it is the environment of the current git branch.

# Arguments reach invoke as "$1"/"$@": each stays one word, and nothing in them is run by the shell.
set positional-arguments := true

# The project's own invoke when bootstrap.sh made .venv, else the one on PATH (e.g. in GitHub Actions).
invoke := if path_exists(justfile_directory() / ".venv/bin/invoke") == "true" { justfile_directory() / ".venv/bin/invoke" } else { "invoke" }

# List the recipes
default:
    @{{quote(just_executable())}} --justfile {{quote(justfile())}} --list --unsorted

# Show an environment's settings and where each came from (secrets masked)
env env="":
    {{quote(invoke)}} env --env="$1"

# Print `export` lines for an environment: eval "$(just env-shell dev)"
env-shell env="":
    {{quote(invoke)}} env --shell --env="$1"

# Write profiles/profiles.toml (one Prefect profile per environment, your edits kept)
profile-sync:
    {{quote(invoke)}} profile-sync

# Start the environment's Prefect server in the background and wait until healthy
server-up env="":
    {{quote(invoke)}} server-up --env="$1"

# Stop the environment's server (and its worker first)
server-down env="":
    {{quote(invoke)}} server-down --env="$1"

# Show every environment's server: branch, port, pid, health, database, URL
server-status:
    {{quote(invoke)}} server-status

# Show the environment's server log (just server-logs dev --follow)
server-logs env="" *flags:
    e="$1"; shift; {{quote(invoke)}} server-logs --env="$e" "$@"

# Back up the environment's database while it runs (just db-backup prod --file F)
db-backup env="" *flags:
    e="$1"; shift; {{quote(invoke)}} db-backup --env="$e" "$@"

# Restore the environment's database from a backup (refused while runs are in flight)
db-restore env file:
    {{quote(invoke)}} db-restore "$2" --env="$1"

# Create or update the blocks and variables of envs/ENV.blocks.toml
blocks env="":
    {{quote(invoke)}} blocks --env="$1"

# Check every declaration, then apply prefect.yaml and envs/ENV.automations.toml to the environment's server
deploy env="":
    {{quote(invoke)}} deploy --env="$1"

# One screen per environment: server, worker, deployments and next runs, last runs, automations
status env="":
    {{quote(invoke)}} status --env="$1"

# Apply the notifications of envs/ENV.automations.toml alone (create, update, remove)
automations env="":
    {{quote(invoke)}} automations --env="$1"

# Start a background worker for the environment's work pool
worker-up env="":
    {{quote(invoke)}} worker-up --env="$1"

# Stop the environment's worker
worker-down env="":
    {{quote(invoke)}} worker-down --env="$1"

# Show every environment's worker
worker-status:
    {{quote(invoke)}} worker-status

# Run a deployment and follow it: just run daily --param rundate=2026-11-21
run deployment *flags:
    {{quote(invoke)}} run "$@"

# The demo: server, blocks, deploy, worker, run the pipeline, show its output (just demo prod --datastore=remote)
demo env="" *flags:
    e="$1"; shift; {{quote(invoke)}} demo --env="$e" "$@"

# Build the Julia image fresh jobs start with (`just julia-image --check` says whether it matches the code)
julia-image *flags:
    {{quote(invoke)}} julia-image "$@"

# Measure server start-up against the raw `prefect server start`
bench-servers:
    {{quote(invoke)}} bench-servers

# Measure Julia block lookups, load time, and a job direct / via the bridge / in a flow run
bench-julia:
    {{quote(invoke)}} bench-julia

# Time a trivial run, 50 runs at once (runs/min, crashed, lost) and a 10 MB Julia job as a flow run
bench-runs:
    {{quote(invoke)}} bench-runs

# Time `invoke deploy --env prod` with 10 deployments against raw `prefect deploy --all`, and a due schedule
bench-deploys:
    {{quote(invoke)}} bench-deploys

# 50 concurrent runs on PostgreSQL vs sqlite, and 1 GiB dataset I/O vs cp / boto3
bench-team:
    {{quote(invoke)}} bench-team

# Run every benchmark (servers, Julia, deployment runs, deploys, team load, dataset I/O)
bench:
    {{quote(invoke)}} bench

# Run the gate: pre-commit hooks, type check, tests (Julia too), declarations (just gate --skip-tests)
gate *flags:
    {{quote(invoke)}} gate "$@"

# The whole test path, as GitHub Actions runs it: the gate
test *flags:
    {{quote(invoke)}} gate "$@"

# Install the git hooks: pre-commit checks on commit, the gate before a push to main
hooks:
    {{quote(invoke)}} hooks

# Promote dev to main (gate on both, fast-forward only) and deploy to prod
promote:
    {{quote(invoke)}} promote
