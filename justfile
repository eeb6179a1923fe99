# prefect-julia: every recipe delegates to `invoke` (tasks.py). `just` alone lists them.
# ENV is dev or prod; left out, it is the environment of the current git branch.

set positional-arguments := false

invoke := "invoke"

# List the recipes
default:
    @just --list --unsorted

# Show an environment's settings and where each came from (secrets masked)
env env="":
    {{invoke}} env {{env}}

# Print `export` lines for an environment: eval "$(just env-shell dev)"
env-shell env="":
    {{invoke}} env --shell {{env}}

# Write profiles/profiles.toml (one Prefect profile per environment, your edits kept)
profile-sync:
    {{invoke}} profile-sync

# Start the environment's Prefect server in the background and wait until healthy
server-up env="":
    {{invoke}} server-up {{env}}

# Stop the environment's server (and its worker first)
server-down env="":
    {{invoke}} server-down {{env}}

# Show every environment's server: branch, port, pid, health, database, URL
server-status:
    {{invoke}} server-status

# Show the environment's server log (just server-logs dev --follow)
server-logs env="" *flags="":
    {{invoke}} server-logs {{env}} {{flags}}

# Measure server start-up against the raw `prefect server start`
bench-servers:
    {{invoke}} bench-servers

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
