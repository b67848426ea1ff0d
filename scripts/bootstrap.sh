#!/usr/bin/env bash
# Prepare a Debian 12 host (root, no stdin) for dockyard: packages, container
# engine configuration, and the project's virtualenv.
#
# Idempotent: every step checks before it changes anything, so running it
# again is fast (no apt-get update when nothing is missing, no pip install when
# pyproject.toml has not changed).
#
# What it does, and why (see /work/shared/ENVIRONMENT.md):
#   1. apt packages: podman + runc + netavark (engine), docker.io (second engine),
#      docker-registry (CNCF distribution), buildah + skopeo (third-party
#      checks), etcd-server (the anchor of bench/apiserver.py; not started as a service), busybox-static (base images FROM scratch), git curl make
#      python3-venv, chromium (the dashboard's browser tests drive it with Playwright; no
#      `playwright install`). Services are kept from auto-starting during the install
#      (policy-rc.d), so nothing system-wide listens on /var/run/docker.sock
#      or :5000 behind our back.
#   2. /etc/containers/containers.conf.d/50-dockyard.conf: runtime runc (crun
#      fails on hybrid cgroups here) and default_ulimits no higher than what a
#      podman process may set (otherwise every container fails with
#      "setrlimit ... operation not permitted").
#   3. /etc/containers/registries.conf.d/50-dockyard-insecure.conf: plain HTTP
#      for registries on 127.0.0.1 and localhost. containers/image matches a
#      port-less location as a prefix of host:port, so this covers every port.
#   4. $REPO/.venv with `pip install -e '.[test]'`.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
export NEEDRESTART_SUSPEND=1  # docker.io recommends needrestart; no service restarts here

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and writes /etc/containers)"

# --- 1. packages --------------------------------------------------------------
PACKAGES=(podman runc netavark buildah skopeo busybox-static docker-registry docker.io
          etcd-server git curl make ca-certificates python3 python3-venv chromium)

missing=()
for pkg in "${PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    [ "$status" = "install ok installed" ] || missing+=("$pkg")
done

if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    # Keep apt from starting dockerd / docker-registry system services: dockyard
    # starts its own engine and registry processes on loopback.
    policy_created=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        policy_created=1
    fi
    cleanup_policy() { [ "$policy_created" -eq 1 ] && rm -f /usr/sbin/policy-rc.d; return 0; }
    trap cleanup_policy EXIT
    apt-get update -qq
    apt-get install -y -qq -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
    cleanup_policy
    trap - EXIT
else
    say "packages present"
fi

for bin in podman runc buildah skopeo docker-registry dockerd; do
    command -v "$bin" >/dev/null || die "$bin not found on PATH after installing packages"
done
[ -x /bin/busybox ] || die "/bin/busybox missing (package busybox-static)"

# If something (an init system, an earlier install) runs the system services,
# say so: they do not break dockyard, which uses its own sockets and ports.
if [ -S /var/run/docker.sock ]; then
    say "note: a system dockerd answers on /var/run/docker.sock (engine auto-detection will use it)"
fi

# --- 2. podman runtime and ulimits -------------------------------------------
# The limits a container may get are bounded by the hard limits of the podman
# process that creates it. podman itself lowers RLIMIT_NPROC to 32768 and
# tries RLIMIT_NOFILE 1048576 at start, so cap to those as well.
hard_limit() {  # $1: value from `ulimit -H?`, $2: cap
    if [ "$1" = "unlimited" ] || [ "$1" -gt "$2" ]; then echo "$2"; else echo "$1"; fi
}
NOFILE="$(hard_limit "$(ulimit -Hn)" 1048576)"
NPROC="$(hard_limit "$(ulimit -Hu)" 32768)"

write_if_changed() {  # $1: path, stdin: content
    local tmp
    tmp="$(mktemp)"
    cat > "$tmp"
    if [ -f "$1" ] && cmp -s "$tmp" "$1"; then
        rm -f "$tmp"
        return 1
    fi
    mkdir -p "$(dirname "$1")"
    install -m 0644 "$tmp" "$1"
    rm -f "$tmp"
    return 0
}

# podman 4.3 (containers/common) reads /etc/containers/containers.conf.d/*.conf
# after containers.conf, so a drop-in overrides only these keys and leaves any
# other settings alone.
if write_if_changed /etc/containers/containers.conf.d/50-dockyard.conf <<EOF
# Written by dockyard scripts/bootstrap.sh
[containers]
default_ulimits = ["nofile=${NOFILE}:${NOFILE}", "nproc=${NPROC}:${NPROC}"]

[engine]
runtime = "runc"
EOF
then say "wrote /etc/containers/containers.conf.d/50-dockyard.conf (nofile=$NOFILE nproc=$NPROC, runtime runc)"
else say "containers.conf drop-in up to date"
fi

# --- 3. plain-HTTP registries on loopback --------------------------------------
if write_if_changed /etc/containers/registries.conf.d/50-dockyard-insecure.conf <<'EOF'
# Written by dockyard scripts/bootstrap.sh
# A location without a port matches that host on every port
# (e.g. 127.0.0.1:5000 and 127.0.0.1:41234). Read at podman service start.
[[registry]]
location = "127.0.0.1"
insecure = true

[[registry]]
location = "localhost"
insecure = true
EOF
then say "wrote /etc/containers/registries.conf.d/50-dockyard-insecure.conf"
else say "registries.conf drop-in up to date"
fi

runtime="$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null || true)"
[ "$runtime" = "runc" ] || die "podman reports OCI runtime '${runtime:-?}', expected runc (check /etc/containers/containers.conf*)"

# --- 4. virtualenv -------------------------------------------------------------
VENV="$REPO/.venv"
if ! "$VENV/bin/python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    say "creating $VENV"
    python3 -m venv "$VENV"
fi
STAMP="$VENV/.dockyard-bootstrap"
want="$(sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ] || ! "$VENV/bin/python" -c 'import dockyard' 2>/dev/null; then
    say "pip install -e '.[test]'"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$REPO[test]"
    echo "$want" > "$STAMP"
else
    say "virtualenv up to date"
fi

say "ready ($(podman --version), $(dockerd --version 2>/dev/null | cut -d, -f1), $("$VENV/bin/python" --version))"
