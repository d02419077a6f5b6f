#!/usr/bin/env bash
# Installs Debian's PostgreSQL if needed and starts a throwaway cluster on 127.0.0.1 for the
# test suite. Prints the URL to use as AULA_TEST_DATABASE_URL (or DATABASE_URL) on stdout.
#   PGPORT_AULA=55432 scripts/start-postgres.sh
# PGDATA_AULA (default /tmp/aula-pg) is the cluster's directory; PG_FSYNC=on keeps fsync on
# (benchmarks: a deployment's durability), the tests' default is off.
set -euo pipefail
port=${PGPORT_AULA:-55432}
data=${PGDATA_AULA:-/tmp/aula-pg}

if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  echo "installing postgresql..." >&2
  export DEBIAN_FRONTEND=noninteractive
  (apt-get install -y -q postgresql >/dev/null 2>&1) || (apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null)
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if ! as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  # A lock file left by a server that did not stop (a machine restarted under it): after a
  # reboot its PID may belong to another process, and PostgreSQL then refuses to start.
  # pg_ctl status just said no server runs on this directory, so the lock is stale.
  if [ -f "$data/postmaster.pid" ]; then
    echo "removing a stale $data/postmaster.pid (no server runs on $data)" >&2
    rm -f "$data/postmaster.pid"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$data"
    as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  if ! as_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=600 -c fsync=${PG_FSYNC:-off}" start >&2; then
    echo "PostgreSQL did not start on port $port with $data; the end of $data/server.log:" >&2
    tail -n 20 "$data/server.log" >&2 || true
    echo "(another server on port $port? set PGPORT_AULA, or PGDATA_AULA to a fresh directory)" >&2
    exit 1
  fi
fi
as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='aula'" | grep -q 1 ||
  as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -c "CREATE DATABASE aula" >/dev/null
echo "postgres://postgres@127.0.0.1:$port/aula"
