#!/usr/bin/env bash
# `make test`: the system programs the cargo tests start, installed from Debian's packages when missing (as root; no
# service is started). PgBouncer (node/tests/it/pooler.rs) and openssl (the throwaway CAs of the TLS tests); Chromium and
# a font for the app's browser test (web/test, driven by playwright-core, which downloads no browser of its own).
# Postgres' own initdb, pg_ctl, pg_basebackup and psql are the machine's. Quiet on success.
set -euo pipefail

missing=()
[[ -x /usr/sbin/pgbouncer ]] || missing+=(pgbouncer)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
[[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || missing+=(fonts-dejavu-core)
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
    echo "test-deps: missing ${missing[*]}: install Debian's packages (apt-get install ${missing[*]})" >&2
    exit 1
fi
# Keep the packages' postinst from starting their services (policy-rc.d 101: no service starts), unless the
# machine has a policy of its own.
policy=/usr/sbin/policy-rc.d
own_policy=false
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    own_policy=true
fi
log=$(mktemp)
status=0
{
    apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
} >"$log" 2>&1 || status=$?
if $own_policy; then rm -f "$policy"; fi
if [[ $status -ne 0 ]]; then
    cat "$log" >&2
    echo "test-deps: installing ${missing[*]} failed" >&2
    exit 1
fi
rm -f "$log"
