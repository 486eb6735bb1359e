#!/usr/bin/env bash
# One-time host set-up for building and running the image with rootful podman on Debian 12 (bookworm),
# as checked on the project's build machine (issue 11). Idempotent; needs root.
#
#   apt-get install podman runc netavark aardvark-dns podman-compose debootstrap
#   deploy/podman/setup-host.sh
#
# Why each setting:
# - runtime "runc": crun (podman's default) fails on kernels that mount cgroups v1 and v2 side by side
#   ("hybrid" cgroups); runc works.
# - default_ulimits: podman's defaults (nofile 1048576, nproc 4194304) are above what this kind of host
#   allows, and the container fails to start; 20000 / 32768 are plenty for gunicorn and nginx.
# - network_backend "netavark" with aardvark-dns: containers on a compose network find each other by
#   name, and several containers sharing one alias (the app replicas) resolve to all their addresses.
# - cgroup_manager "cgroupfs": no systemd is running inside build containers/CI.
set -euo pipefail

CONF=${CONTAINERS_CONF_PATH:-/etc/containers/containers.conf}
if [ -e "$CONF" ] && grep -q "emotion-assistant setup-host" "$CONF"; then
    echo "$CONF already set up"
    exit 0
fi
if [ -e "$CONF" ] && grep -qv '^\s*\(#.*\)\?$' "$CONF"; then
    echo "setup-host.sh: $CONF exists with settings of its own; add these by hand:" >&2
    SHOW_ONLY=1
fi
read -r -d '' BODY <<'CONF' || true
# emotion-assistant setup-host (deploy/podman/setup-host.sh)
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_backend = "netavark"
CONF
if [ "${SHOW_ONLY:-}" = 1 ]; then
    echo "$BODY"
    exit 1
fi
mkdir -p "$(dirname "$CONF")"
echo "$BODY" > "$CONF"
echo "wrote $CONF"
