#!/usr/bin/env bash
# `make lint`: the shipped binary builds no tool. `beatstream` (package beatstream-node) may depend on the devkit
# (anvil, deploy, a throwaway database for `beatstream dev`) but not on the test kit (scenes, mirror comparison), and
# builds beatstream-yellow without its test-utils feature (the nitronode double).
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}

status=0
normal=$($CARGO tree -p beatstream-node -e normal,build --prefix none --offline 2>/dev/null || $CARGO tree -p beatstream-node -e normal,build --prefix none)
if grep -q '^beatstream-testkit ' <<<"$normal"; then
    echo "check-product-deps: beatstream-node depends on beatstream-testkit; depend on beatstream-devkit instead:" >&2
    $CARGO tree -p beatstream-node -e normal,build -i beatstream-testkit >&2
    status=1
fi
features=$($CARGO tree -p beatstream-node -e normal,build,features -i beatstream-yellow --prefix none --offline 2>/dev/null || true)
if grep -q 'beatstream-yellow feature "test-utils"' <<<"$features"; then
    echo "check-product-deps: beatstream-node builds the Yellow double (beatstream-yellow feature test-utils):" >&2
    echo "$features" >&2
    status=1
fi
exit $status
