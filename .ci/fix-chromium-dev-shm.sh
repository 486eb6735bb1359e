#!/usr/bin/env bash
# Makes Debian's /etc/chromium.d/dev-shm read one number when several tmpfs are mounted on /dev/shm
# (.ci/install-browser.sh says why). Usage: fix-chromium-dev-shm.sh [FILE] (default the installed
# one). Idempotent; leaves a file that does not have the faulty line as it is. The file is a conffile:
# dpkg keeps the change on upgrades (and asks, or keeps it, if Debian changes the file).
set -euo pipefail

file="${1:-/etc/chromium.d/dev-shm}"
[ -f "$file" ] || exit 0
faulty='^shm_avail=\$(findmnt -bnr -o avail -T /dev/shm)$'
if grep -q "$faulty" "$file"; then
    sed -i "s|$faulty|shm_avail=\$(findmnt -bnr -o avail -T /dev/shm \| tail -n 1)|" "$file"
    echo "fixed $file: one /dev/shm size when mounts are stacked"
fi
