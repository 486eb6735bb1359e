#!/usr/bin/env bash
# Installs Debian's nginx for tests/app/test_server.py, which runs deploy/nginx/emotion.conf.template on
# loopback in front of gunicorn (those tests skip without it). Idempotent.
set -euo pipefail

if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    echo "nginx already installed"
    exit 0
fi

bash "$(dirname "$0")/apt-install.sh" nginx-light
