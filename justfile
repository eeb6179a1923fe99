# prefect-julia: every recipe delegates to `invoke` (tasks.py). `just` alone lists them.
# ENV is dev or prod; left out, it is the environment of the current git branch.

set positional-arguments := false

# The project's own invoke when bootstrap.sh made .venv, else the one on PATH (e.g. in GitHub Actions).
invoke := if path_exists(justfile_directory() / ".venv/bin/invoke") == "true" { justfile_directory() / ".venv/bin/invoke" } else { "invoke" }

# List the recipes
default:
    @just --list --unsorted

# Show an environment's settings and where each came from (secrets masked)
env env="":
    {{invoke}} env --env={{env}}

# Print `export` lines for an environment: eval "$(just env-shell dev)"
env-shell env="":
    {{invoke}} env --shell --env={{env}}

# Write profiles/profiles.toml (one Prefect profile per environment, your edits kept)
profile-sync:
    {{invoke}} profile-sync

# Start the environment's Prefect server in the background and wait until healthy
server-up env="":
    {{invoke}} server-up --env={{env}}

# Stop the environment's server (and its worker first)
server-down env="":
    {{invoke}} server-down --env={{env}}

# Show every environment's server: branch, port, pid, health, database, URL
server-status:
    {{invoke}} server-status

# Show the environment's server log (just server-logs dev --follow)
server-logs env="" *flags="":
    {{invoke}} server-logs --env={{env}} {{flags}}

# Back up the environment's database while it runs (just db-backup prod --file F)
db-backup env="" *flags="":
    {{invoke}} db-backup --env={{env}} {{flags}}

# Restore the environment's database from a backup (refused while runs are in flight)
db-restore env file:
    {{invoke}} db-restore {{file}} --env={{env}}

# Create or update the blocks and variables of envs/ENV.blocks.toml
blocks env="":
    {{invoke}} blocks --env={{env}}

# Check every declaration, then apply prefect.yaml and envs/ENV.automations.toml to the environment's server
deploy env="":
    {{invoke}} deploy --env={{env}}

# One screen per environment: server, worker, deployments and next runs, last runs, automations
status env="":
    {{invoke}} status --env={{env}}

# Apply the notifications of envs/ENV.automations.toml alone (create, update, remove)
automations env="":
    {{invoke}} automations --env={{env}}

# Start a background worker for the environment's work pool
worker-up env="":
    {{invoke}} worker-up --env={{env}}

# Stop the environment's worker
worker-down env="":
    {{invoke}} worker-down --env={{env}}

# Show every environment's worker
worker-status:
    {{invoke}} worker-status

# Run a deployment and follow it: just run daily --param rundate=2026-11-21
run deployment *flags="":
    {{invoke}} run {{deployment}} {{flags}}

# The demo: server, blocks, deploy, worker, run the pipeline, show its output (just demo prod --datastore=remote)
demo env="" *flags="":
    {{invoke}} demo --env={{env}} {{flags}}

# Measure server start-up against the raw `prefect server start`
bench-servers:
    {{invoke}} bench-servers

# Measure Julia block lookups, load time, and a job direct / via the bridge / in a flow run
bench-julia:
    {{invoke}} bench-julia

# Time a trivial run, 50 runs at once (runs/min, crashed, lost) and a 10 MB Julia job as a flow run
bench-runs:
    {{invoke}} bench-runs

# Time `invoke deploy --env prod` with 10 deployments against raw `prefect deploy --all`, and a due schedule
bench-deploys:
    {{invoke}} bench-deploys

# 50 concurrent runs on PostgreSQL vs sqlite, and 1 GiB dataset I/O vs cp / boto3
bench-team:
    {{invoke}} bench-team

# Run every benchmark (servers, Julia, deployment runs, deploys, team load, dataset I/O)
bench:
    {{invoke}} bench

# Run the gate: pre-commit hooks, type check, tests (Julia too), declarations (just gate --skip-tests)
gate *flags="":
    {{invoke}} gate {{flags}}

# The whole test path, as GitHub Actions runs it: the gate
test *flags="":
    {{invoke}} gate {{flags}}

# Install the git hooks: pre-commit checks on commit, the gate before a push to main
hooks:
    {{invoke}} hooks

# Promote dev to main (gate on both, fast-forward only) and deploy to prod
promote:
    {{invoke}} promote
