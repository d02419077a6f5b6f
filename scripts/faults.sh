#!/usr/bin/env bash
# The fault harness (`aula faults`, services/aula/src/faults) on the real binaries, inside a
# private network and mount namespace: its own loopback (the standard ports, nothing shared
# with the host or other runs), tmpfs data directories that vanish with it, and on PostgreSQL a
# cluster of its own that it may restart. Builds the binaries first; every flag goes to
# `aula faults` (see `aula faults --help`):
#   scripts/faults.sh --backend sqlite --duration 60s
#   scripts/faults.sh --backend postgres --seed 42 --faults kill,pg-restart-fast
#   AULA_FAULTS_PROFILE=release scripts/faults.sh --duration 10m    # release binaries
# Exit status: 0 nothing acknowledged lost or duplicated, 1 something was, 2 the harness failed.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${AULA_FAULTS_PROFILE:-debug}

if [ "$(id -u)" != 0 ]; then
  echo "scripts/faults.sh: needs root (unshare -n -m for a private loopback and mounts, mount -t tmpfs)" >&2
  exit 2
fi
for tool in unshare ip mount; do
  command -v "$tool" >/dev/null || { echo "scripts/faults.sh: $tool not found" >&2; exit 2; }
done
case " $* " in
  *postgres*)
    if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
      echo "installing postgresql..." >&2
      export DEBIAN_FRONTEND=noninteractive
      (apt-get install -y -q postgresql >/dev/null 2>&1) ||
        (apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null)
    fi ;;
esac

flags=()
[ "$profile" = release ] && flags=(--release)
cargo build "${flags[@]}" --bins -q
# A pid namespace too: when the harness exits (or is killed), the kernel kills everything it
# started, PostgreSQL included.
exec unshare -n -m -p -f --kill-child --mount-proc --propagation private \
  bash -c 'ip link set lo up && exec "$0" faults "$@"' "target/$profile/aula" "$@"
