#!/usr/bin/env bash
# Makes `docker buildx` and `docker compose` (v2) work on a Debian 12 machine without a registry.
#
# Debian 12 ships neither plugin; Debian 13 (trixie) ships both as static binaries. We download
# the two .debs from the archive already configured (no trixie system-wide), unpack them and put
# the plugins in ~/.docker/cli-plugins. Idempotent: nothing is done when both already answer.
# Also makes sure a Docker daemon is running (starts dockerd in the background if needed).
set -euo pipefail

log() { printf 'install-docker-plugins: %s\n' "$*" >&2; }

ensure_daemon() {
  if docker info >/dev/null 2>&1; then
    return 0
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    log "installing docker.io"
    DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io >/dev/null
  fi
  log "starting dockerd in the background (log: /var/log/dockerd.log)"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
      return 0
    fi
    sleep 1
  done
  log "dockerd did not come up in 60 s; see /var/log/dockerd.log"
  return 1
}

plugins_work() {
  docker buildx version >/dev/null 2>&1 && docker compose version >/dev/null 2>&1
}

install_plugins() {
  local work uri opts plugin_dir
  work=$(mktemp -d)
  chmod 0755 "$work"  # apt downloads as _apt when it can
  trap 'rm -rf "$work"' RETURN
  uri=$(sed -n 's/^URIs: //p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
  if [ -z "$uri" ]; then
    # Older one-line sources.list format.
    uri=$(awk '$1 == "deb" && $2 ~ /^https?:/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  fi
  [ -n "$uri" ] || { log "cannot find the Debian archive URI in apt's sources"; return 1; }
  printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" >"$work/trixie.sources"
  opts=(-o "Dir::Etc::sourcelist=$work/trixie.sources" -o "Dir::Etc::sourceparts=-"
        -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::archives=$work/archives")
  mkdir -p "$work/lists/partial" "$work/archives/partial"
  log "downloading docker-buildx and docker-compose from trixie ($uri)"
  apt-get "${opts[@]}" update >/dev/null
  (cd "$work" && apt-get "${opts[@]}" download docker-buildx docker-compose >/dev/null)
  mkdir -p "$work/x"
  for deb in "$work"/docker-buildx_*.deb "$work"/docker-compose_*.deb; do
    dpkg-deb -x "$deb" "$work/x"
  done
  plugin_dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
  mkdir -p "$plugin_dir"
  install -m 0755 "$work"/x/usr/libexec/docker/cli-plugins/* "$plugin_dir"/
  log "installed $(ls "$work"/x/usr/libexec/docker/cli-plugins | tr '\n' ' ')into $plugin_dir"
}

ensure_daemon
if plugins_work; then
  log "buildx and compose already present"
else
  install_plugins
  plugins_work || { log "plugins installed but do not answer"; exit 1; }
fi
docker buildx version
docker compose version
