#!/usr/bin/env bash
# Installs Debian's Chromium for the end-to-end tests (tests/e2e/).
# Playwright's own browser download is never used: the tests launch /usr/bin/chromium.
# Idempotent: does nothing when /usr/bin/chromium is already there.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
    exit 0
fi

bash "$(dirname "$0")/apt-install.sh" chromium

/usr/bin/chromium --version
