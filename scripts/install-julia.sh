#!/usr/bin/env bash
# Install a working `julia` on PATH for the Julia half of the kit (julia/).
#
# - If a working `julia` is already on PATH, it is used and nothing is installed.
# - Otherwise Debian bullseye's julia 1.5.3 is installed with apt, through a private source list kept
#   under $JULIA_TOOLS_DIR (the machine's own apt configuration in /etc/apt is only read, never changed).
#   That julia segfaults when an exception is thrown during type inference with bookworm's libunwind, so
#   bullseye's libunwind8 is unpacked into a private folder and a small wrapper `julia` in
#   $JULIA_WRAPPER_DIR puts it first on LD_LIBRARY_PATH for julia only.
#
# - Julia's package manager clones the General registry from GitHub when no registry is installed, which
#   fails offline. When none of the user's depots (DEPOT_PATH, i.e. JULIA_DEPOT_PATH or ~/.julia) holds a
#   registry, an empty local one is written to the first depot, so `Pkg.develop(path="julia")` works
#   offline for the standard-library-only PrefectInterfaces. An existing registry is never touched.
#   This is done as the invoking user (never with sudo): the depot is theirs.
#
# Idempotent and non-interactive (runs under CI=true without stdin). Needs root (or sudo) only when it
# has to install.
#
# Settings (environment):
#   JULIA_TOOLS_DIR      private folder for apt state and libunwind   (default /opt/prefect-julia)
#   JULIA_WRAPPER_DIR    where the `julia` wrapper goes                (default /usr/local/bin)
#   JULIA_DEBIAN_MIRROR  Debian archive URI for bullseye               (default: the machine's Debian URI)
set -euo pipefail

TOOLS_DIR="${JULIA_TOOLS_DIR:-/opt/prefect-julia}"
WRAPPER_DIR="${JULIA_WRAPPER_DIR:-/usr/local/bin}"
WRAPPER="$WRAPPER_DIR/julia"
REAL_JULIA=/usr/bin/julia
LIBUNWIND_VERSION="1.3.2-2"
MARKER="# prefect-julia wrapper"

say() { printf 'install-julia: %s\n' "$*" >&2; }
die() {
    printf 'install-julia: ERROR: %s\n' "$1" >&2
    shift
    for line in "$@"; do printf '  %s\n' "$line" >&2; done
    exit 1
}

# A julia works when it starts, survives an exception thrown inside a compiled function, and is >= 1.5.
julia_works() {
    "$1" --startup-file=no --history-file=no -e '
        f(x) = x > 0 ? error("probe") : x
        ok = try f(1); false catch e; e isa ErrorException end
        ok && VERSION >= v"1.5" || exit(3)' >/dev/null 2>&1
}

# The Debian julia without the private libunwind is not safe even when the probe above passes.
needs_wrapper() {
    local path
    path="$(readlink -f "$1")"
    [[ "$path" == "$REAL_JULIA" ]] && ! grep -qs "$MARKER" "$1"
}

# Give the user's depot an empty local registry when no depot has any registry (see above).
ensure_registry() {
    local out
    out="$("$1" --startup-file=no --history-file=no -e '
        regs = [joinpath(d, "registries") for d in DEPOT_PATH]
        if any(r -> isdir(r) && !isempty(readdir(r)), regs)
            print("present")
        else
            dir = joinpath(DEPOT_PATH[1], "registries", "Empty")
            mkpath(dir; mode=0o700)
            file = joinpath(dir, "Registry.toml")
            write(file, "name = \"Empty\"\nuuid = \"9d1b0c47-3f2e-4a54-9a77-5c1c0b8a3e12\"\nrepo = \"\"\n\n[packages]\n")
            chmod(file, 0o600)
            print(dir)
        end')" || die "could not check julia's package registries ($1)." \
        "Try: $1 --startup-file=no -e 'println(DEPOT_PATH)'"
    if [[ "$out" != present ]]; then
        say "note: wrote an empty Julia package registry to $out (there was none, and Pkg would try to clone" \
            "the public one from GitHub); for public packages: julia -e 'using Pkg; Pkg.Registry.add(\"General\")'"
    fi
}

existing="$(command -v julia || true)"
if [[ -n "$existing" ]] && ! needs_wrapper "$existing" && julia_works "$existing"; then
    say "using $existing ($("$existing" --startup-file=no -e 'print(VERSION)'))"
    ensure_registry "$existing"
    exit 0
fi

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "installing julia needs root, and sudo is not available." \
        "Run this script as root, or install julia yourself and put it on PATH."
    SUDO=(sudo -n)
fi
command -v apt-get >/dev/null 2>&1 || die "no julia on PATH and no apt-get to install one." \
    "Install julia >= 1.5 yourself and put it on PATH, then run this script again."

APT_DIR="$TOOLS_DIR/apt"
UNWIND_DIR="$TOOLS_DIR/libunwind"
"${SUDO[@]}" mkdir -p "$APT_DIR/sources.list.d" "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" \
    "$UNWIND_DIR"

# The machine's Debian archive URI (the one serving its own release), reused for bullseye.
mirror="${JULIA_DEBIAN_MIRROR:-}"
if [[ -z "$mirror" ]]; then
    mirror="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}' \
        | grep -v -- '-security' | grep '/debian/\?$' | head -n 1 || true)"
fi
if [[ -z "$mirror" ]]; then
    mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | sed -n 's/^deb \(\[[^]]*\] \)\?\([^ ]*\) .*/\2/p' | grep -v -- '-security' | head -n 1 || true)"
fi
[[ -n "$mirror" ]] || die "could not find the machine's Debian archive in /etc/apt." \
    "Set JULIA_DEBIAN_MIRROR to a Debian archive URI and run this script again."

# Private source parts: a copy of the machine's sources (so dependencies resolve against its release)
# plus bullseye, where julia 1.5.3 lives.
"${SUDO[@]}" find "$APT_DIR/sources.list.d" -mindepth 1 -delete
for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] && "${SUDO[@]}" cp "$f" "$APT_DIR/sources.list.d/"
done
if [[ -f /etc/apt/sources.list ]]; then
    "${SUDO[@]}" cp /etc/apt/sources.list "$APT_DIR/sources.list.d/machine.list"
fi
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
printf 'deb [signed-by=%s check-valid-until=no] %s bullseye main\n' "$keyring" "$mirror" \
    | "${SUDO[@]}" tee "$APT_DIR/sources.list.d/zz-bullseye-julia.list" >/dev/null

APT_OPTS=(
    -o "Dir::Etc::sourcelist=/dev/null"
    -o "Dir::Etc::sourceparts=$APT_DIR/sources.list.d"
    -o "Dir::State::Lists=$APT_DIR/lists"
    -o "Dir::Cache=$APT_DIR/cache"
    -o "Acquire::Check-Valid-Until=false"
    -o "APT::Install-Recommends=false"
)
export DEBIAN_FRONTEND=noninteractive

if [[ ! -x "$REAL_JULIA" ]] || ! dpkg -s julia >/dev/null 2>&1; then
    say "updating the private package lists (bullseye + this machine's release)"
    "${SUDO[@]}" apt-get "${APT_OPTS[@]}" -q update >"$TOOLS_DIR/apt-update.log" 2>&1 \
        || die "apt-get update failed; see $TOOLS_DIR/apt-update.log" "$(tail -n 5 "$TOOLS_DIR/apt-update.log")"
    say "installing julia from bullseye (takes a few minutes)"
    "${SUDO[@]}" apt-get "${APT_OPTS[@]}" -q -y install julia >"$TOOLS_DIR/apt-install.log" 2>&1 \
        || die "apt-get install julia failed; see $TOOLS_DIR/apt-install.log" \
            "$(tail -n 5 "$TOOLS_DIR/apt-install.log")"
fi
[[ -x "$REAL_JULIA" ]] || die "apt installed julia but $REAL_JULIA is missing."

libdir="$(find "$UNWIND_DIR" -name 'libunwind.so.8' -printf '%h\n' 2>/dev/null | head -n 1 || true)"
if [[ -z "$libdir" ]]; then
    say "fetching bullseye's libunwind8 $LIBUNWIND_VERSION into $UNWIND_DIR"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    if ! (cd "$tmp" && apt-get "${APT_OPTS[@]}" -q download "libunwind8=$LIBUNWIND_VERSION") \
        >"$TOOLS_DIR/apt-download.log" 2>&1; then
        "${SUDO[@]}" apt-get "${APT_OPTS[@]}" -q update >"$TOOLS_DIR/apt-update.log" 2>&1 || true
        (cd "$tmp" && apt-get "${APT_OPTS[@]}" -q download "libunwind8=$LIBUNWIND_VERSION") \
            >"$TOOLS_DIR/apt-download.log" 2>&1 \
            || die "could not download libunwind8 $LIBUNWIND_VERSION; see $TOOLS_DIR/apt-download.log"
    fi
    "${SUDO[@]}" dpkg-deb -x "$tmp"/libunwind8_*.deb "$UNWIND_DIR"
    libdir="$(find "$UNWIND_DIR" -name 'libunwind.so.8' -printf '%h\n' | head -n 1)"
fi
[[ -n "$libdir" ]] || die "libunwind.so.8 not found under $UNWIND_DIR after unpacking."

say "writing the julia wrapper $WRAPPER"
"${SUDO[@]}" mkdir -p "$WRAPPER_DIR"
"${SUDO[@]}" tee "$WRAPPER" >/dev/null <<EOF
#!/bin/sh
$MARKER: Debian's julia 1.5.3 with bullseye's libunwind (see scripts/install-julia.sh)
LD_LIBRARY_PATH="$libdir\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec $REAL_JULIA "\$@"
EOF
"${SUDO[@]}" chmod 0755 "$WRAPPER"

julia_works "$WRAPPER" || die "the installed julia does not work: $WRAPPER" \
    "Try: $WRAPPER --startup-file=no -e 'error(1)'"
case ":$PATH:" in
    *":$WRAPPER_DIR:"*) ;;
    *) say "note: $WRAPPER_DIR is not on PATH; add it to use plain \`julia\`" ;;
esac
ensure_registry "$WRAPPER"
say "julia ready: $WRAPPER ($("$WRAPPER" --startup-file=no -e 'print(VERSION)'))"
