#!/usr/bin/env bash
# Tests of observability/: Prometheus configs and rules (promtool), the Grafana dashboards
# (generated, datasources, metric names), the collector config, and, live, a real Prometheus scraping
# `aula up` under traffic: every rule evaluates, every dashboard query returns data.
#
#   scripts/test-observability.sh            # everything
#   scripts/test-observability.sh static     # no services: promtool, dashboards, names
#   scripts/test-observability.sh live       # the live part only
#   scripts/test-observability.sh -- -k gemini  # extra arguments go to pytest
#
# Environment: AULA_BIN (default target/debug/aula; the live part fails when it is missing),
# AULA_OBS_VENV (default tests/observability/.venv), AULA_OBS_NETNS (auto|off, see below).
# Installs what is missing: Debian's prometheus (for promtool and prometheus), a Python venv with
# pytest, pyyaml, requests, grpcio and grpcio-tools.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

what=all
if [[ $# -gt 0 && $1 != -- ]]; then what=$1; shift; fi
[[ ${1:-} == -- ]] && shift

log() { printf '[test-observability] %s\n' "$*" >&2; }

as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }

install_prometheus() {
    if command -v promtool >/dev/null && command -v prometheus >/dev/null; then return; fi
    log "installing Debian's prometheus (promtool, prometheus)"
    # The package starts a daemon on :9090 where it can: keep it from starting (policy-rc.d), and stop
    # and disable it below where it started anyway (systemd). The tests start their own Prometheus.
    local policy=/usr/sbin/policy-rc.d added=
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod +x "$policy"
        added=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null ||
        { as_root apt-get update >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null; }
    [[ -n $added ]] && as_root rm -f "$policy"
    if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
        as_root systemctl disable --now prometheus || true
    fi
}

venv=${AULA_OBS_VENV:-$repo/tests/observability/.venv}
setup_venv() {
    if [[ ! -x $venv/bin/python ]]; then
        log "creating $venv"
        python3 -m venv "$venv"
    fi
    if ! "$venv/bin/python" -c 'import pytest, yaml, requests, grpc, grpc_tools' 2>/dev/null; then
        log "installing pytest pyyaml requests grpcio grpcio-tools"
        "$venv/bin/pip" install --quiet --disable-pip-version-check pytest pyyaml requests grpcio grpcio-tools
    fi
}

install_prometheus
setup_venv

export AULA_BIN=${AULA_BIN:-$repo/target/debug/aula}
args=(-p no:cacheprovider -ra)
case $what in
    all) ;;
    static) args+=(-m "not live") ;;
    live) args+=(-m live) ;;
    *) echo "usage: $0 [all|static|live] [-- pytest args]" >&2; exit 2 ;;
esac
log "promtool: $(promtool --version 2>&1 | head -n1)"
log "AULA_BIN=$AULA_BIN"
# The live part binds the contract's fixed ports (50051-50056, 8080, 9051-9056, 9080). Where it can,
# it runs in a private network namespace, with its own 127.0.0.1, so a compose stack or another
# `aula up` publishing those ports on this host does not collide with it. AULA_OBS_NETNS=off: host.
netns=()
if [[ $what != static && ${AULA_OBS_NETNS:-auto} != off && $(id -u) == 0 ]] &&
    command -v unshare >/dev/null && command -v ip >/dev/null && unshare --net true 2>/dev/null; then
    log "running in a private network namespace (loopback only)"
    netns=(unshare --net -- sh -c 'ip link set lo up && exec "$@"' sh)
fi
exec "${netns[@]}" "$venv/bin/python" -m pytest "${args[@]}" "$@" tests/observability
