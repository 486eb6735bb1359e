#!/usr/bin/env bash
# apt-get install the named Debian packages, as root or through sudo (what the .ci/install-*.sh
# scripts share). Usage: bash .ci/apt-install.sh PACKAGE...
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "apt-install.sh: need root (or sudo) to apt-get install $*" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends "$@"
