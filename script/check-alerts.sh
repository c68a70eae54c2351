#!/usr/bin/env bash
# `make test`: the Prometheus alert rules in ops/prometheus/ are valid (`promtool check rules`) and do what their unit
# tests say (`promtool test rules`). promtool comes from Debian's `prometheus` package, installed here when missing
# (as root; the package's server is not started). Quiet on success. That the rules and ops/grafana/ name only metrics
# the services export is checked by a cargo test (node/tests/it/ops.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "check-alerts: promtool is missing: install Debian's prometheus package (apt-get install prometheus)" >&2
        exit 1
    fi
    # Keep the package's postinst from starting a Prometheus server (policy-rc.d 101: no service starts), unless the
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
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
    } >"$log" 2>&1 || status=$?
    if $own_policy; then rm -f "$policy"; fi
    if [[ $status -ne 0 ]]; then
        cat "$log" >&2
        rm -f "$log"
        echo "check-alerts: installing prometheus (for promtool) failed" >&2
        exit 1
    fi
    rm -f "$log"
fi

out=$(promtool check rules ops/prometheus/alerts.yml 2>&1) || { echo "$out" >&2; exit 1; }
out=$(cd ops/prometheus && promtool test rules alerts_test.yml 2>&1) || { echo "$out" >&2; exit 1; }
