#!/usr/bin/env bash
# make install-test: installs the built library the ways a packager and an operator do and
# checks what lands where. Usage: test_install.sh MAKE CC "CWARN" SOVERSION VERSION
#   1. `make install PREFIX=p` with CARGO=false: installing builds nothing;
#   2. the .so is stripped (no .debug_* sections, no symtab), names its debug file through
#      .gnu_debuglink, and that file (LIBDIR/.debug) holds the debug info with the same
#      build id; the .a has no debug info; sizes stay within the bounds below;
#   3. SONAME and symlinks come from the one SOVERSION; the .pc file's Libs.private is
#      rustc's native-static-libs; programs build against both libraries with pkg-config;
#   4. the ops tool is BINDIR/raida-healing, executable, and finds the installed library;
#   5. LIBDIR, INCLUDEDIR, BINDIR and DESTDIR move each part (the .pc names the final paths);
#   6. uninstall removes everything; install without a build says so and fails.
set -euo pipefail
MAKE_CMD=$1 CC=$2 CWARN=$3 SOVERSION=$4 VERSION=$5

# Installed-size bounds (bytes). Measured: .so 0.89 MB stripped (8.6 MB as built, debug
# info included), .a 15.5 MB without debug info (about 30 MB as built). The bounds leave
# room to grow and still catch an unstripped install.
MAX_SO=1500000
MAX_STATIC=22000000

fail() { echo "install-test: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

# 1. builds nothing: a cargo call would run `false` and fail the install
$MAKE_CMD --no-print-directory install PREFIX="$prefix" CARGO=false >/dev/null
lib=$prefix/lib
so=$lib/libraida_healing.so.$VERSION

# 2. stripped, debug info kept apart and linked
sections() { readelf -S --wide "$1" 2>/dev/null; }
sections "$so" | grep -q '\.debug_' && fail "$so still has debug sections"
sections "$so" | grep -q ' \.symtab ' && fail "$so still has a symbol table"
debuglink=$(readelf --string-dump=.gnu_debuglink "$so" | sed -n 's/^ *\[ *0\] *//p')
[ "$debuglink" = "libraida_healing.so.$VERSION.debug" ] || fail "debuglink is '$debuglink'"
debug=$lib/.debug/$debuglink
[ -f "$debug" ] || fail "no debug file $debug"
sections "$debug" | grep -q '\.debug_info' || fail "$debug holds no .debug_info"
build_id() { readelf -n "$1" | sed -n 's/.*Build ID: //p'; }
[ -n "$(build_id "$so")" ] && [ "$(build_id "$so")" = "$(build_id "$debug")" ] \
    || fail "build ids differ: $(build_id "$so") vs $(build_id "$debug")"
if readelf -S --wide "$lib/libraida_healing.a" | grep -q '\.debug_'; then
    fail "libraida_healing.a still has debug sections"
fi
so_size=$(stat -c %s "$so")
a_size=$(stat -c %s "$lib/libraida_healing.a")
debug_size=$(stat -c %s "$debug")
[ "$so_size" -le "$MAX_SO" ] || fail ".so is $so_size bytes, bound $MAX_SO"
[ "$a_size" -le "$MAX_STATIC" ] || fail ".a is $a_size bytes, bound $MAX_STATIC"
echo "installed sizes: libraida_healing.so.$VERSION $so_size, libraida_healing.a $a_size," \
     ".debug/$debuglink $debug_size bytes"
[ "$(stat -c %a "$so")" = 755 ] && [ "$(stat -c %a "$lib/libraida_healing.a")" = 644 ] \
    || fail "modes of the installed libraries"

# 3. SONAME, symlinks, pkg-config (shared and static)
readelf -d "$so" | grep -q "Library soname: \[libraida_healing.so.$SOVERSION\]" \
    || fail "installed library has no SONAME libraida_healing.so.$SOVERSION"
[ "$(readlink "$lib/libraida_healing.so.$SOVERSION")" = "libraida_healing.so.$VERSION" ] || fail "so.$SOVERSION link"
[ "$(readlink "$lib/libraida_healing.so")" = "libraida_healing.so.$SOVERSION" ] || fail "dev .so link"
[ -f "$prefix/include/raida_healing.h" ] || fail "no header"
export PKG_CONFIG_PATH=$lib/pkgconfig
native=$(cat "$(dirname "$0")/../${CARGO_TARGET_DIR:-target}/release/libraida_healing.native-static-libs")
grep -qx "Libs.private: $native" "$lib/pkgconfig/raida_healing.pc" \
    || fail "Libs.private is not rustc's native-static-libs ($native)"
flags=$(pkg-config --cflags --libs raida_healing)
echo "pkg-config: $flags"
# shellcheck disable=SC2086
$CC $CWARN c_tests/install_probe.c -o "$tmp/probe" $flags -Wl,-rpath,"$lib"
readelf -d "$tmp/probe" | grep -q "Shared library: \[libraida_healing.so.$SOVERSION\]" \
    || fail "probe does not need libraida_healing.so.$SOVERSION"
"$tmp/probe"
static_libs=$(pkg-config --static --libs-only-l raida_healing | sed 's/-lraida_healing//')
echo "pkg-config --static: $static_libs"
# shellcheck disable=SC2086
$CC $CWARN c_tests/install_probe.c -o "$tmp/probe_static" $(pkg-config --cflags raida_healing) \
    "$lib/libraida_healing.a" $static_libs
readelf -d "$tmp/probe_static" | grep -q libraida_healing && fail "static probe needs the .so"
"$tmp/probe_static"

# 4. the ops tool, found with no --lib and no environment
tool=$prefix/bin/raida-healing
[ -x "$tool" ] || fail "$tool is not executable"
grep -qx "INSTALLED_LIBRARY = \"$lib/libraida_healing.so.$SOVERSION\"" "$tool" \
    || fail "the tool does not name the installed library"
out=$(env -u RAIDA_HEALING_LIB "$tool" check)
echo "$out" | grep -qx "library: $lib/libraida_healing.so.$SOVERSION" || fail "tool check: $out"
echo "$out" | grep -qx "check: ok" || fail "tool check: $out"

# 5. every directory variable, staged under DESTDIR
stage=$tmp/stage
$MAKE_CMD --no-print-directory install CARGO=false DESTDIR="$stage" PREFIX=/opt/rh \
    LIBDIR=/opt/rh/lib64 INCLUDEDIR=/opt/rh/inc BINDIR=/opt/rh/sbin >/dev/null
for f in lib64/libraida_healing.so.$VERSION lib64/libraida_healing.so.$SOVERSION \
         lib64/libraida_healing.so lib64/libraida_healing.a lib64/.debug/$debuglink \
         lib64/pkgconfig/raida_healing.pc inc/raida_healing.h sbin/raida-healing; do
    [ -e "$stage/opt/rh/$f" ] || fail "DESTDIR install lacks /opt/rh/$f"
done
[ -z "$(find "$stage" -path "$stage/opt/rh" -prune -o -type f -print)" ] || fail "files outside /opt/rh"
pc=$stage/opt/rh/lib64/pkgconfig/raida_healing.pc
grep -qx 'libdir=/opt/rh/lib64' "$pc" && grep -qx 'includedir=/opt/rh/inc' "$pc" \
    || fail "the .pc does not name LIBDIR/INCLUDEDIR: $(cat "$pc")"
grep -qx 'INSTALLED_LIBRARY = "/opt/rh/lib64/libraida_healing.so.'"$SOVERSION"'"' "$stage/opt/rh/sbin/raida-healing" \
    || fail "the staged tool does not name the final library path"

# 6. uninstall, and install without a build
$MAKE_CMD --no-print-directory uninstall PREFIX="$prefix" >/dev/null
left=$(find "$prefix" -type f -o -type l)
[ -z "$left" ] || fail "uninstall left: $left"
if out=$(CARGO_TARGET_DIR="$tmp/nothing-built" $MAKE_CMD --no-print-directory install \
        PREFIX="$tmp/p2" CARGO=false 2>&1); then
    fail "install without a build succeeded"
fi
echo "$out" | grep -q "is missing; build first: make && sudo make install" || fail "install without a build: $out"
[ ! -e "$tmp/p2" ] || fail "install without a build created $tmp/p2"
echo "install-test: builds nothing; stripped .so with debuglink + build-id matched debug file;" \
     ".a without debug info; sizes bounded; SONAME .so.$SOVERSION; Libs.private from rustc;" \
     "shared and static probes; tool installed; LIBDIR/INCLUDEDIR/BINDIR/DESTDIR; uninstall ok"
