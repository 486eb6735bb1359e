#!/usr/bin/env bash
# Installs Debian's Chromium for the end-to-end tests (tests/e2e/).
# Playwright's own browser download is never used: the tests launch /usr/bin/chromium.
# Idempotent: does nothing when /usr/bin/chromium is already there (but for the fix below).
set -euo pipefail

here="$(dirname "$0")"

if [ ! -x /usr/bin/chromium ]; then
    bash "$here/apt-install.sh" chromium
fi

# Debian's /etc/chromium.d/dev-shm (sourced by /usr/bin/chromium on every start) compares the free
# space of /dev/shm with a number, but `findmnt -T /dev/shm` prints one line per mount stacked there
# (containers often mount a second tmpfs over the first), so the test became
# `[ 25276198912 25276198912 -lt 4080218931 ]` and dash printed "[: 25276198912: unexpected operator"
# each time Chromium started. The fix keeps the last line: the mount on top, the one in effect.
bash "$here/fix-chromium-dev-shm.sh"

/usr/bin/chromium --version
