#!/usr/bin/env bash
# Vendor the three files of onnxruntime-web the page's on-device mode loads (issue 18) into
# static/vendor/onnxruntime-web/, from the npm registry at a pinned version, checked against the
# registry's sha512 integrity. Run it only to change the version: the files are committed, so
# `make run` / `flask run` need neither node nor the network (tests/app/test_ondevice.py checks
# the committed files against MANIFEST.json).
#
#   bash deploy/vendor-onnxruntime-web.sh            # the pinned version below
#   ORT_WEB_VERSION=1.30.0 bash deploy/vendor-onnxruntime-web.sh
set -euo pipefail
VERSION="${ORT_WEB_VERSION:-1.30.0}"
# The registry's integrity for onnxruntime-web-1.30.0.tgz (npm view onnxruntime-web@1.30.0 dist.integrity)
INTEGRITY_1_30_0="sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ=="
FILES=(ort.wasm.min.mjs ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm)

cd "$(dirname "$0")/.."
DEST=static/vendor/onnxruntime-web
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "onnxruntime-web@${VERSION}" >/dev/null)
tgz="$work/onnxruntime-web-${VERSION}.tgz"
want=$(npm view "onnxruntime-web@${VERSION}" dist.integrity)
if [ "$VERSION" = "1.30.0" ] && [ "$want" != "$INTEGRITY_1_30_0" ]; then
  echo "the registry's integrity for ${VERSION} changed: $want" >&2; exit 1
fi
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
[ "$got" = "$want" ] || { echo "integrity mismatch: $got != $want" >&2; exit 1; }
tar -xzf "$tgz" -C "$work"
# The files go in a folder named after the version, so their URLs change when they do: the app and
# nginx serve them with a year's max-age and `immutable` (issue 24). MANIFEST.json stays above it.
mkdir -p "$DEST"
find "$DEST" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
mkdir -p "$DEST/$VERSION"
for f in "${FILES[@]}"; do cp "$work/package/dist/$f" "$DEST/$VERSION/$f"; done
python3 - "$DEST" "$VERSION" "$want" "${FILES[@]}" <<'PY'
import hashlib, json, sys
from pathlib import Path
top, version, integrity, files = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
dest = top / version
manifest = {"package": "onnxruntime-web", "version": version, "license": "MIT (Copyright (c) Microsoft Corporation)",
            "source": f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{version}.tgz",
            "integrity": integrity, "entry": files[0],
            "files": {f: {"bytes": (dest / f).stat().st_size, "sha256": hashlib.sha256((dest / f).read_bytes()).hexdigest()}
                      for f in files}}
(top / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
PY
echo "vendored onnxruntime-web ${VERSION} into ${DEST}/${VERSION}"
