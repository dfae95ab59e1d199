#!/usr/bin/env bash
# build.sh OUT_DIR — builds the web UI into OUT_DIR/web_assets.c (called by web/web.cmake).
# 1. npm ci into OUT_DIR/node_modules with the versions pinned by web/package-lock.json,
#    skipped while OUT_DIR/node_modules/.quarrel-lock holds the lockfile's sha256;
# 2. node web/build.mjs: esbuild bundle + minify, content hashes, gzip, the C table.
# If npm ci fails (no registry), it writes the empty table (web/embed_none.c) so the server
# still builds, and says so; delete OUT_DIR/web_assets.c to retry.
set -euo pipefail
WEB=$(cd "$(dirname "$0")" && pwd)
OUT=$1
mkdir -p "$OUT"
cp "$WEB/package.json" "$WEB/package-lock.json" "$OUT/"
want=$(sha256sum "$WEB/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$OUT/node_modules/.quarrel-lock" 2>/dev/null)" != "$want" ]; then
  echo "web: npm ci (marked, dompurify, highlight.js, esbuild, playwright-core as pinned in web/package-lock.json)" >&2
  rm -rf "$OUT/node_modules"
  if ! (cd "$OUT" && timeout 600 npm ci --no-audit --no-fund --fetch-retries=2 --fetch-timeout=60000 >&2); then
    echo "web: WARNING: npm ci failed; building quarrel WITHOUT the web UI (/ will say so)" >&2
    cp "$WEB/embed_none.c" "$OUT/web_assets.c"
    rm -f "$OUT/manifest.json"
    exit 0
  fi
  echo "$want" > "$OUT/node_modules/.quarrel-lock"
fi
exec node "$WEB/build.mjs" "$OUT"
