#!/usr/bin/env bash
# Build the repository's Dockerfile into an image, with podman (preferred) or docker.
#
#   deploy/build-image.sh                                   # FROM python:3.11-slim, tag emotion-assistant
#   deploy/build-image.sh --base localhost/emotion-base:bookworm --tag emotion-assistant:test
#
# --base sets the Dockerfile's BASE build argument (no sed). The host's CA bundle, when present
# (CA_BUNDLE, default /etc/ssl/certs/ca-certificates.crt), is passed as the build secret "ca" so pip
# works behind a TLS-inspecting proxy; it is not stored in the image. On a Debian host, run
# deploy/podman/setup-host.sh once first (runc, ulimits, DNS between containers).
set -euo pipefail

BASE="" TAG="emotion-assistant" EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --base) BASE=$2; shift 2 ;;
        --tag) TAG=$2; shift 2 ;;
        --) shift; EXTRA+=("$@"); break ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "build-image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

ENGINE=${ENGINE:-$(command -v podman || command -v docker || true)}
[ -n "$ENGINE" ] || { echo "build-image.sh: neither podman nor docker is installed" >&2; exit 1; }
cd "$(dirname "$0")/.."

ARGS=(build -t "$TAG" -f Dockerfile)
# podman writes OCI images by default, which drop HEALTHCHECK; the docker format keeps it.
[ "$(basename "$ENGINE")" = podman ] && ARGS+=(--format docker)
[ -n "$BASE" ] && ARGS+=(--build-arg "BASE=$BASE")
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$CA_BUNDLE" ] && ARGS+=(--secret "id=ca,src=$CA_BUNDLE")
echo "+ $ENGINE ${ARGS[*]} ${EXTRA[*]:-} ."
exec "$ENGINE" "${ARGS[@]}" "${EXTRA[@]}" .
