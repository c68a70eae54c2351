#!/usr/bin/env bash
# `make web`: builds the SDK (clients/ts) and the app with its GraphiQL (web/) into web/dist, which is committed and
# embedded in the node (graphql-api/src/web.rs), so a clone's `cargo build` needs no npm. Both install from their
# committed lock files. `--check` (in `make test`): builds into a scratch directory and fails when the committed
# web/dist differs, like the ABI check.
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
[[ ${1:-} == --check ]] && check=true

# npm ci from the lock file, unless node_modules was installed from this very lock file already.
npm_ci() {
    [[ -f $1/node_modules/.package-lock.json && $1/node_modules/.package-lock.json -nt $1/package-lock.json ]] && return
    (cd "$1" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}
npm_ci clients/ts
(cd clients/ts && npm run --silent build)
npm_ci web

if ! $check; then
    (cd web && npm run --silent build)
    exit 0
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
(cd web && npx tsc --noEmit && npx vite build --outDir "$out" --emptyOutDir --logLevel warn)
if ! diff -r "$out" web/dist >/dev/null; then
    diff -rq "$out" web/dist | sed "s|$out|(fresh build)|" >&2 || true
    echo "web/dist is not the build of web/ and clients/ts: run \`make web\` and commit web/dist" >&2
    exit 1
fi
