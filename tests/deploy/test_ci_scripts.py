"""The CI scripts' own fixes (issue 24), run on copies: nothing here installs anything."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT

# Debian bookworm's /etc/chromium.d/dev-shm as chromium 156 ships it (sourced by /usr/bin/chromium).
DEV_SHM = """\
shm_avail=$(findmnt -bnr -o avail -T /dev/shm)

if [ $shm_avail -lt 4080218931 ]  # 3.8 GB
then
\t# Use $TMPDIR or /tmp instead
\texport CHROMIUM_FLAGS="$CHROMIUM_FLAGS --disable-dev-shm-usage"
fi
"""


@pytest.mark.skipif(shutil.which("dash") is None, reason="dash (Debian's /bin/sh) is not installed")
@pytest.mark.parametrize("sizes, flagged", [(["25276198912", "25276198912"], False), (["1000", "2000000"], True)])
def test_chromium_dev_shm_reads_one_size_when_tmpfs_mounts_are_stacked(tmp_path, sizes, flagged):
    """`make test` printed `[: 25276203008: unexpected operator` while installing Chromium: findmnt
    printed one line per tmpfs stacked on /dev/shm. After the fix the top mount's size is used."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "findmnt").write_text("#!/bin/sh\nprintf '%s\\n' " + " ".join(sizes) + "\n")
    (bin_dir / "findmnt").chmod(0o755)
    conf = tmp_path / "dev-shm"
    conf.write_text(DEV_SHM)

    def source():
        return subprocess.run(
            ["dash", "-c", f'. {conf}; printf "%s" "$CHROMIUM_FLAGS"'],
            capture_output=True,
            text=True,
            env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
            timeout=10,
        )

    assert "unexpected operator" in source().stderr  # Debian's file, as shipped
    fix = ROOT / ".ci" / "fix-chromium-dev-shm.sh"
    for _ in range(2):  # idempotent
        subprocess.run(["bash", str(fix), str(conf)], check=True, capture_output=True, timeout=10)
    after = source()
    assert after.stderr == "" and after.returncode == 0
    assert ("--disable-dev-shm-usage" in after.stdout) == flagged
