#!/usr/bin/env bash
# Installs Debian's nginx for tests/app/test_server.py, which runs deploy/nginx/emotion.conf.template on
# loopback in front of gunicorn (those tests skip without it). Idempotent.
set -euo pipefail

if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    echo "nginx already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-nginx.sh: need root (or sudo) to apt-get install nginx-light" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends nginx-light
