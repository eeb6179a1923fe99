# prefect-julia: every recipe delegates to `invoke` (tasks.py) with the words and flags it is given, so
# `just TASK ARGS...` is `invoke TASK ARGS...`. `just` alone lists them. ENV is an environment as a bare word
# (`just deploy dev`); left out, it is the environment of the current git branch.

# Arguments reach invoke as "$@": each stays one word, and nothing in them is run by the shell.
set positional-arguments := true
# A failing recipe exits with invoke's code; invoke has said what went wrong (no second line from just).
set no-exit-message := true
# Recipes are not echoed: the output is invoke's.
set quiet := true

# The project's own invoke when bootstrap.sh made .venv, else the one on PATH (e.g. in GitHub Actions).
invoke := if path_exists(justfile_directory() / ".venv/bin/invoke") == "true" { justfile_directory() / ".venv/bin/invoke" } else { "invoke" }

# List the recipes
default:
    @{{quote(just_executable())}} --justfile {{quote(justfile())}} --list --unsorted

# Show an environment's settings and where each came from, secrets masked (just env dev; --shell prints export lines)
env *args:
    {{quote(invoke)}} env "$@"

# Print `export` lines for an environment: eval "$(just env-shell dev)"
env-shell *args:
    {{quote(invoke)}} env --shell "$@"

# Stop and remove branch environments whose branch is gone or merged (just env-prune --dry-run; --data too)
env-prune *args:
    {{quote(invoke)}} env-prune "$@"

# Write profiles/profiles.toml (one Prefect profile per environment, your edits kept)
profile-sync *args:
    {{quote(invoke)}} profile-sync "$@"

# Start the environment's Prefect server in the background and wait until healthy (just server-up dev)
server-up *args:
    {{quote(invoke)}} server-up "$@"

# Stop the environment's server, its worker first (just server-down dev --cancel cancels runs in flight)
server-down *args:
    {{quote(invoke)}} server-down "$@"

# Show the servers: branch, port, pid, health, database, URL (just server-status [ENV])
server-status *args:
    {{quote(invoke)}} server-status "$@"

# Show the environment's server log (just server-logs dev --follow)
server-logs *args:
    {{quote(invoke)}} server-logs "$@"

# Back up the environment's database while it runs (just db-backup prod --file F)
db-backup *args:
    {{quote(invoke)}} db-backup "$@"

# Restore the environment's database from a backup (just db-restore FILE prod)
db-restore *args:
    {{quote(invoke)}} db-restore "$@"

# Create or update the blocks and variables of envs/ENV.blocks.toml (just blocks dev)
blocks *args:
    {{quote(invoke)}} blocks "$@"

# Check every declaration, then apply prefect.yaml and envs/ENV.automations.toml (just deploy dev)
deploy *args:
    {{quote(invoke)}} deploy "$@"

# What `invoke deploy` would change on the environment's server, without changing it (just plan prod --exit-code)
plan *args:
    {{quote(invoke)}} plan "$@"

# One screen per environment: server, worker, deployments, last runs, automations (just status [ENV])
status *args:
    {{quote(invoke)}} status "$@"

# Apply the notifications of envs/ENV.automations.toml alone (just automations prod)
automations *args:
    {{quote(invoke)}} automations "$@"

# Start a background worker for the environment's work pool (just worker-up dev)
worker-up *args:
    {{quote(invoke)}} worker-up "$@"

# Stop the environment's worker (just worker-down dev --cancel cancels runs in flight)
worker-down *args:
    {{quote(invoke)}} worker-down "$@"

# Show the workers and their warm Julia sessions (just worker-status [ENV])
worker-status *args:
    {{quote(invoke)}} worker-status "$@"

# Run a deployment and follow it (just run daily dev --param rundate=2026-11-21)
run *args:
    {{quote(invoke)}} run "$@"

# The demo: server, blocks, deploy, worker, run the pipeline, show its output (just demo dev --datastore remote)
demo *args:
    {{quote(invoke)}} demo "$@"

# Build the Julia image fresh jobs start with (just julia-image --check says whether it matches the code)
julia-image *args:
    {{quote(invoke)}} julia-image "$@"

# Measure server start-up against the raw `prefect server start`
bench-servers *args:
    {{quote(invoke)}} bench-servers "$@"

# Measure Julia block lookups, load time, and a job direct / via the bridge / in a flow run
bench-julia *args:
    {{quote(invoke)}} bench-julia "$@"

# Time a trivial run, 50 runs at once (runs/min, crashed, lost) and a 10 MB Julia job as a flow run
bench-runs *args:
    {{quote(invoke)}} bench-runs "$@"

# Time `invoke deploy prod` with 10 deployments against raw `prefect deploy --all`, and a due schedule
bench-deploys *args:
    {{quote(invoke)}} bench-deploys "$@"

# 50 concurrent runs on PostgreSQL vs sqlite, and 1 GiB dataset I/O vs cp / boto3
bench-team *args:
    {{quote(invoke)}} bench-team "$@"

# The full-size load and fault tests the gate runs small (pytest -m slow)
bench-tests *args:
    {{quote(invoke)}} bench-tests "$@"

# Run every benchmark (servers, Julia, deployment runs, deploys, team load, dataset I/O), then the slow tests
bench *args:
    {{quote(invoke)}} bench "$@"

# Run the gate cheapest step first, stopping at the first failure; once per clean tree (just gate --force)
gate *args:
    {{quote(invoke)}} gate "$@"

# The whole test path, as GitHub Actions runs it: the gate (just test --keep-going runs every step)
test *args:
    {{quote(invoke)}} gate "$@"

# Install the git hooks: pre-commit checks on commit, the gate before a push to main
hooks *args:
    {{quote(invoke)}} hooks "$@"

# Promote your branch: check prod, one gate, fast-forward main to the branch, deploy prod (just promote)
promote *args:
    {{quote(invoke)}} promote "$@"
