#!/usr/bin/env bash
# Builds the Aula images without pulling anything: aula/<name>:$AULA_TAG (default dev) for every
# service of services/catalogue.toml (the gRPC services and the gateway) and the `aula` CLI.
#
#   1. one cargo invocation builds every binary, static, in release mode, in target/;
#   2. the binaries, the host's CA bundle and an empty data/ are staged in a small context
#      directory (Docker 20.10's BuildKit rejects named build contexts, so no --build-context);
#   3. the repository's Dockerfile builds each image from that context with BINARY=prebuilt:
#      BuildKit builds only the stages the target needs, so `FROM rust` is never touched;
#   4. prints each image's size and fails if a service image exceeds 20 MB (the CLI: 30 MB: it also carries `aula certs` (rcgen), `aula token` and the fault harness).
#
# Usage: scripts/build-images.sh [NAME...]        (default: every image)
#        scripts/build-images.sh --list            the images, their gRPC and metrics ports; builds nothing
# Environment:
#   AULA_TAG          image tag (default dev)
#   AULA_SKIP_CARGO=1 use the binaries already in $AULA_BIN_DIR instead of running cargo
#   AULA_BIN_DIR      where the static binaries are (default target/x86_64-unknown-linux-gnu/release)
# The images and their ports come from services/catalogue.toml, the one list of services (plus the
# `aula` CLI, which exposes every port); tests/k8s/test_catalogue.py checks `--list` against it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

tag=${AULA_TAG:-dev}
triple=x86_64-unknown-linux-gnu
bin_dir=${AULA_BIN_DIR:-$root/target/$triple/release}
service_limit=$((20 * 1000 * 1000))
cli_limit=$((30 * 1000 * 1000))

log() { printf 'build-images: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# "name grpc_port metrics_port" of every [[service]] of services/catalogue.toml, in its order. The
# catalogue's own layout (one `key = value` a line) is all this reads; tests/k8s/test_catalogue.py
# compares the result with a real TOML parser.
catalogue() {
  awk -F= '
    function val(s) { sub(/#.*/, "", s); gsub(/[ \t"]/, "", s); return s }
    /^\[\[service\]\]/ { if (n != "") print n, p, m; n = p = m = ""; next }
    $1 ~ /^name[ \t]*$/ { n = val($2) }
    $1 ~ /^port[ \t]*$/ { p = val($2) }
    $1 ~ /^metrics_port[ \t]*$/ { m = val($2) }
    END { if (n != "") print n, p, m }
  ' services/catalogue.toml
}

SERVICES=()
declare -A GRPC_PORT METRICS_PORT
while read -r n g m; do
  [[ $g =~ ^[0-9]+$ && $m =~ ^[0-9]+$ ]] || die "services/catalogue.toml: no port or metrics_port for '$n'"
  SERVICES+=("$n"); GRPC_PORT[$n]=$g; METRICS_PORT[$n]=$m
done < <(catalogue)
[ ${#SERVICES[@]} -gt 0 ] || die "no [[service]] in services/catalogue.toml"
# The CLI can serve everything (`aula up`): it exposes every port of the catalogue.
GRPC_PORT[aula]=$(for s in "${SERVICES[@]}"; do printf '%s ' "${GRPC_PORT[$s]}"; done)
METRICS_PORT[aula]=$(for s in "${SERVICES[@]}"; do printf '%s ' "${METRICS_PORT[$s]}"; done)
GRPC_PORT[aula]=${GRPC_PORT[aula]% }; METRICS_PORT[aula]=${METRICS_PORT[aula]% }
ALL=("${SERVICES[@]}" aula)

if [ "${1:-}" = --list ]; then
  for n in "${ALL[@]}"; do printf '%s\t%s\t%s\n' "$n" "${GRPC_PORT[$n]}" "${METRICS_PORT[$n]}"; done
  exit 0
fi

names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${ALL[@]}")
for n in "${names[@]}"; do
  case " ${ALL[*]} " in *" $n "*) ;; *) die "unknown image '$n' (one of: ${ALL[*]})" ;; esac
done

"$root/scripts/install-docker-plugins.sh" >/dev/null

# ------------------------------------------------------------------ 1. static binaries
if [ "${AULA_SKIP_CARGO:-0}" != 1 ]; then
  bin_args=()
  for n in "${names[@]}"; do bin_args+=(--bin "$n"); done
  log "cargo build --release --target $triple ${bin_args[*]}"
  # With an explicit --target, RUSTFLAGS reach only the target's crates, not build scripts.
  RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --target "$triple" --target-dir "$root/target" "${bin_args[@]}"
fi

# ------------------------------------------------------------------ 2. staging context
ctx="$root/target/docker-context"
rm -rf "$ctx"
mkdir -p "$ctx/bin" "$ctx/data"
ca=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca" ] || die "no CA bundle at $ca (apt-get install -y ca-certificates)"
cp "$ca" "$ctx/ca-certificates.crt"
for n in "${names[@]}"; do
  b="$bin_dir/$n"
  [ -x "$b" ] || die "missing binary $b"
  # A scratch image has no dynamic loader: refuse anything that needs one.
  # grep without -q reads all of readelf's output: with -q, under pipefail, readelf could die of
  # SIGPIPE after the match and the check read a dynamic binary as static.
  if readelf -l "$b" 2>/dev/null | grep 'Requesting program interpreter' >/dev/null \
     || readelf -d "$b" 2>/dev/null | grep '(NEEDED)' >/dev/null; then
    die "$b is dynamically linked; build it with RUSTFLAGS='-C target-feature=+crt-static' --target $triple"
  fi
  cp "$b" "$ctx/bin/$n"
done

# ------------------------------------------------------------------ 3. images
version=$(awk -F'"' '/^\[workspace.package\]/ {p = 1} p && /^version *=/ {print $2; exit}' Cargo.toml)
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)

for n in "${names[@]}"; do
  grpc=${GRPC_PORT[$n]}; metrics=${METRICS_PORT[$n]}
  log "aula/$n:$tag (ports $grpc / $metrics)"
  DOCKER_BUILDKIT=1 docker buildx build --load --progress=plain \
    --file "$root/Dockerfile" --target image \
    --build-arg SERVICE="$n" --build-arg BINARY=prebuilt \
    --build-arg GRPC_PORT="$grpc" --build-arg METRICS_PORT="$metrics" \
    --build-arg VERSION="${version:-0.0.0}" --build-arg REVISION="$revision" \
    --build-arg CREATED="$created" \
    --tag "aula/$n:$tag" "$ctx" >"$ctx/build-$n.log" 2>&1 \
    || { cat "$ctx/build-$n.log" >&2; die "building aula/$n:$tag failed"; }
done

# ------------------------------------------------------------------ 4. sizes
fail=0
printf '%-24s %10s %10s\n' IMAGE SIZE LIMIT
for n in "${names[@]}"; do
  size=$(docker image inspect --format '{{.Size}}' "aula/$n:$tag")
  limit=$service_limit
  [ "$n" = aula ] && limit=$cli_limit
  verdict=ok
  if [ "$size" -gt "$limit" ]; then verdict="TOO BIG"; fail=1; fi
  printf '%-24s %7.1f MB %7.1f MB  %s\n' "aula/$n:$tag" \
    "$(awk -v s="$size" 'BEGIN {print s / 1e6}')" "$(awk -v s="$limit" 'BEGIN {print s / 1e6}')" "$verdict"
done
[ "$fail" = 0 ] || die "an image exceeds its size budget"
