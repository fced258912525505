#!/usr/bin/env bash
# Runs a browser check (`timeline.mjs`) with playwright-core installed once
# under ~/.cache/orders-platform/browser and Debian's chromium (install it
# with `apt-get install chromium`; .ci/run does).
#
# Usage: deploy/tools/browser/run.sh <script.mjs> <arguments...>
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
CACHE="${BROWSER_TOOLS:-$HOME/.cache/orders-platform/browser}"
if ! command -v "${CHROMIUM:-chromium}" >/dev/null; then
    echo "chromium is not installed (apt-get install chromium)" >&2
    exit 3
fi
mkdir -p "$CACHE"
if ! cmp -s "$HERE/package.json" "$CACHE/package.json" \
    || ! cmp -s "$HERE/package-lock.json" "$CACHE/package-lock.json" \
    || [[ ! -d "$CACHE/node_modules/playwright-core" ]]; then
    cp "$HERE/package.json" "$HERE/package-lock.json" "$CACHE/"
    (cd "$CACHE" && npm ci --silent --no-audit --no-fund >&2)
fi
script="$1"
shift
cp "$HERE/$script" "$CACHE/$script"
exec node "$CACHE/$script" "$@"
