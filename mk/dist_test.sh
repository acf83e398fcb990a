#!/usr/bin/env bash
# make dist-test: the release tarball builds and passes the ABI guard where there is no git
# and no network. Usage: dist_test.sh MAKE DIST_NAME
#   1. `make dist` writes build/dist/DIST_NAME.tar.gz and its .sha256, which sha256sum -c
#      accepts; the tarball holds Cargo.lock and no .git, target/, build/ or vendored crate;
#   2. unpacked in a temporary folder, `make check-abi` runs with a `git` first on PATH
#      that fails and records any call (none may happen) and with cargo offline
#      (CARGO_NET_OFFLINE: only the registry cache, no network);
#   3. the .so built there is byte for byte the one built here (paths are remapped).
# In a tree that is itself an unpacked tarball (no .git) there is nothing to archive: it
# says so and checks that tree instead (Cargo.lock present, nothing vendored).
set -euo pipefail
MAKE_CMD=$1 NAME=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "dist-test: $*" >&2; exit 1; }
cd "$ROOT"
if [ ! -e .git ]; then
    [ -f Cargo.lock ] || fail "this unpacked tree has no Cargo.lock"
    [ ! -e vendor ] || fail "this unpacked tree vendors crates"
    echo "dist-test: no .git here (an unpacked tarball): make dist needs a checkout;" \
         "this tree has Cargo.lock and vendors nothing, and its own make check-abi is a suite of make test"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. the tarball and its checksum
$MAKE_CMD --no-print-directory dist >/dev/null
tarball=build/dist/$NAME.tar.gz
(cd build/dist && sha256sum --quiet -c "$NAME.tar.gz.sha256") || fail "the .sha256 does not match $tarball"
listing=$(tar -tzf "$tarball")
grep -qx "$NAME/Cargo.lock" <<< "$listing" || fail "$tarball has no Cargo.lock"
if echo "$listing" | grep -E "^$NAME/(\.git|target|build|vendor)/"; then fail "$tarball holds the paths above"; fi
[ -z "$(echo "$listing" | grep -v "^$NAME/")" ] || fail "$tarball has files outside $NAME/"

# 2. unpacked: no git, no network
tar -xzf "$tarball" -C "$tmp"
mkdir "$tmp/bin"
printf '#!/bin/sh\necho "git $*" >> %s/git-calls\nexit 1\n' "$tmp" > "$tmp/bin/git"
chmod +x "$tmp/bin/git"
(cd "$tmp/$NAME" && env -u CARGO_TARGET_DIR PATH="$tmp/bin:$PATH" CARGO_NET_OFFLINE=true \
    $MAKE_CMD --no-print-directory check-abi > "$tmp/check-abi.log" 2>&1) \
    || { tail -n 30 "$tmp/check-abi.log"; fail "make check-abi failed in the unpacked tarball (log above)"; }
grep -q "^check-abi: [0-9]* exports" "$tmp/check-abi.log" || fail "no check-abi line: $(cat "$tmp/check-abi.log")"
[ ! -e "$tmp/git-calls" ] || fail "the tarball's build called git: $(cat "$tmp/git-calls")"

# 3. the same library as this checkout's
cmp -s "$tmp/$NAME/target/release/libraida_healing.so" "$ROOT/${CARGO_TARGET_DIR:-target}/release/libraida_healing.so" \
    || fail "the .so built from the tarball differs from this checkout's"
echo "dist-test: $tarball ($(stat -c %s "$tarball") bytes, sha256 ok, Cargo.lock, nothing vendored)" \
     "builds with no git and cargo offline; make check-abi passes there; its .so is byte for byte this checkout's"
