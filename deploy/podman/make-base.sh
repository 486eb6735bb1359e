#!/usr/bin/env bash
# A stand-in for python:3.11-slim where that image cannot be pulled (no registry access, as on the
# project's build machine): Debian 12 minbase from debootstrap (Python 3.11.2) with a venv on PATH, so
# `python` and `pip` behave as in the official image. Imported with `podman import`; needs root.
#
#   deploy/podman/make-base.sh [IMAGE]      # default localhost/emotion-base:bookworm
#   deploy/build-image.sh --base localhost/emotion-base:bookworm
set -euo pipefail

IMAGE=${1:-localhost/emotion-base:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ENGINE=${ENGINE:-podman}
command -v debootstrap >/dev/null || { echo "make-base.sh: apt-get install debootstrap" >&2; exit 1; }

ROOTFS=$(mktemp -d /tmp/emotion-base.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT
debootstrap --variant=minbase --include=python3-venv,ca-certificates bookworm "$ROOTFS" "$MIRROR"
# The venv stands where the official image keeps its Python: first on PATH, pip included.
chroot "$ROOTFS" python3 -m venv /opt/python
chroot "$ROOTFS" apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin
tar -C "$ROOTFS" -c . | "$ENGINE" import \
    --change 'ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$IMAGE"
echo "imported $IMAGE"
