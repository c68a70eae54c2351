#!/usr/bin/env bash
# `make lint` and `make test`: in each service crate, only `src/db/` may use sqlx (the crate's SQL and row types live there; the rest
# speaks in domain types). A crate is checked once it has a `src/db/` directory, so the rule holds for each crate as
# it lands. Exempt: comments, unit tests (from a file's first top-level `#[cfg(test)]` on), `tests/`, `benches/`,
# and the shared crates (primitives, devkit, testkit).
set -euo pipefail
cd "$(dirname "$0")/.."

SERVICES=(indexer stream-relay keeper graphql-api studio)
status=0
for crate in "${SERVICES[@]}"; do
    if [[ ! -d "$crate/src/db" ]]; then
        echo "check-sqlx: $crate has no src/db/ yet, not checked"
        continue
    fi
    while IFS= read -r -d '' file; do
        hits=$(awk '
            /^#\[cfg\(test\)\]/ { exit }
            { line = $0; sub(/\/\/.*/, "", line) }
            line ~ /(^|[^A-Za-z0-9_])sqlx([^A-Za-z0-9_]|$)/ { printf "%s:%d: %s\n", FILENAME, FNR, $0 }
        ' "$file")
        if [[ -n "$hits" ]]; then
            echo "$hits"
            status=1
        fi
    done < <(find "$crate/src" -name '*.rs' -not -path "$crate/src/db/*" -print0 | sort -z)
done
if [[ $status -ne 0 ]]; then
    echo "check-sqlx: sqlx used outside src/db/ (above): move the query or row type into the crate's db module" >&2
fi
exit $status
