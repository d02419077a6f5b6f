#!/usr/bin/env bash
# The Kubernetes test suite (tests/k8s): lint and render helm/aula with the real Helm library,
# validate every object against the Kubernetes 1.29-1.32 schemas, policy and network-policy
# tests, schema rejections, and k8s/ in sync with the chart. Offline once the venv exists.
#
#   scripts/test-k8s.sh [pytest args...]
#   scripts/test-k8s.sh --setup-only     # only create the venv; prints its path
#
# The venv lives in $AULA_K8S_VENV (default /tmp/aula-k8s-venv), outside the work tree.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${AULA_K8S_VENV:-/tmp/aula-k8s-venv}"
# Versions checked to work together (helm-python-sdk 0.2.2 carries Helm v4.2.3).
pins=(helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 pytest==9.2.0 PyYAML==6.0.4)

setup() {
    if [[ -f "$venv/.pins" && "$(cat "$venv/.pins")" == "${pins[*]}" && -x "$venv/bin/python" ]]; then
        return
    fi
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        echo "python3-venv is missing: installing it" >&2
        if [[ $EUID -eq 0 ]]; then
            (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv) >&2
        else
            echo "run: sudo apt-get install -y python3-venv" >&2
            exit 1
        fi
    fi
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}" >&2
    echo "${pins[*]}" > "$venv/.pins"
}

if [[ "${1:-}" == "--setup-only" ]]; then
    setup
    echo "$venv"
    exit 0
fi

setup
cd "$root"
exec "$venv/bin/python" -m pytest -p no:cacheprovider tests/k8s "$@"
