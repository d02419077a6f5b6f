#!/usr/bin/env bash
# Regenerate k8s/ from the Helm chart (see scripts/render-k8s.py). `--check` only compares.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$("$here/test-k8s.sh" --setup-only)"
exec "$venv/bin/python" "$here/render-k8s.py" "$@"
