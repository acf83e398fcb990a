#!/usr/bin/env bash
# make install-test: installs the built library the ways a packager and an operator do and
# checks what lands where. Usage: test_install.sh MAKE CC "CWARN" SOVERSION VERSION
#   1. `make install PREFIX=p` with CARGO=false: installing builds nothing;
#   2. the .so is stripped (no .debug_* sections, no symtab), names its debug file through
#      .gnu_debuglink, and that file (LIBDIR/.debug) holds the debug info with the same
#      build id; the .a has no debug info; sizes stay within the bounds below;
#   3. SONAME and symlinks come from the one SOVERSION; the .pc file's native_libs (its
#      Libs.private) is rustc's native-static-libs less -lgcc_s; the install says how the
#      library will be found; a program without an rpath exits 127, with LD_LIBRARY_PATH
#      it runs; gdb on the installed library shows arguments and locals from the debug
#      file, whose paths are remapped (no trace of this checkout);
#   R. every link recipe of README.md (the code blocks after `<!-- recipe: NAME -->`), run
#      exactly as written in a private mount namespace where /usr/local and /etc are
#      overlays and /opt a tmpfs (so `sudo make install` and ldconfig change nothing
#      outside): the system install runs ldconfig and its program finds the library
#      through the cache; the prefix install's program through its rpath; the static ones
#      need no .so (the whole-program one no loader at all);
#   V. every export of the installed .so carries the symbol version raida_healing.map gives
#      it (name@@RAIDA_HEALING_0), and no defined dynamic symbol is unversioned;
#   4. the ops tool: BINDIR/raida-healing launches the module PYTHONDIR/raida_healing.py,
#      which an ops script imports with PYTHONPATH; both find the installed library; its
#      man page (MANDIR/man1/raida-healing.1) renders with `man -l`, without a warning,
#      with a section per subcommand; the licences, README, CHANGELOG and docs are in
#      DOCDIR;
#   5. LIBDIR, INCLUDEDIR, BINDIR and DESTDIR move each part (the .pc names the final paths);
#   S. STRIP=0: the libraries as built (debug info in the .so), no debug file;
#   6. uninstall removes every file and every directory install created (and the module's
#      bytecode, which running the tool wrote), and nothing that was there before; after
#      the system recipe it runs ldconfig, and the loader's cache no longer names the
#      library; install without a build says so and fails.
set -euo pipefail
MAKE_CMD=$1 CC=$2 CWARN=$3 SOVERSION=$4 VERSION=$5
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# Installed-size bounds (bytes). Measured: .so 0.84 MB stripped (15.7 MB as built, debug
# info included), its compressed debug file 3.7 MB, .a 15.7 MB without debug info (49 MB
# as built). The bounds leave room to grow and still catch an unstripped install.
MAX_SO=1500000
MAX_STATIC=22000000
MAX_DEBUG=8000000

# "FAILED" is what `make test` looks for in a log to show as the suite's first error line.
fail() { echo "install-test: FAILED: $*" >&2; exit 1; }
# `grep -q` stops reading at its first match: under pipefail a writer still writing (ldconfig
# -p, readelf) then dies of SIGPIPE, and the pipeline fails although it matched (in a
# condition, a match is taken for none). `contains` reads all of its input.
contains() { grep "$@" >/dev/null; }
# The tool below runs with write access to its module's folder, as it does when root runs
# it: Python then writes the module's bytecode there, and uninstall (6.) must remove it
# whatever the caller's environment says.
unset PYTHONDONTWRITEBYTECODE
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

# 1. builds nothing: a cargo call would run `false` and fail the install. The prefix holds
# a directory and a file of someone else's before: uninstall (6.) must leave them.
mkdir -p "$prefix/include" "$prefix/share"
echo "not ours" > "$prefix/include/other.h"
$MAKE_CMD --no-print-directory install PREFIX="$prefix" CARGO=false >/dev/null
lib=$prefix/lib
so=$lib/libraida_healing.so.$VERSION

# 2. stripped, debug info kept apart and linked
sections() { readelf -S --wide "$1" 2>/dev/null; }
sections "$so" | contains '\.debug_' && fail "$so still has debug sections"
sections "$so" | contains ' \.symtab ' && fail "$so still has a symbol table"
debuglink=$(readelf --string-dump=.gnu_debuglink "$so" | sed -n 's/^ *\[ *0\] *//p')
[ "$debuglink" = "libraida_healing.so.$VERSION.debug" ] || fail "debuglink is '$debuglink'"
debug=$lib/.debug/$debuglink
[ -f "$debug" ] || fail "no debug file $debug"
sections "$debug" | contains '\.debug_info' || fail "$debug holds no .debug_info"
build_id() { readelf -n "$1" | sed -n 's/.*Build ID: //p'; }
[ -n "$(build_id "$so")" ] && [ "$(build_id "$so")" = "$(build_id "$debug")" ] \
    || fail "build ids differ: $(build_id "$so") vs $(build_id "$debug")"
if readelf -S --wide "$lib/libraida_healing.a" | contains '\.debug_'; then
    fail "libraida_healing.a still has debug sections"
fi
so_size=$(stat -c %s "$so")
a_size=$(stat -c %s "$lib/libraida_healing.a")
debug_size=$(stat -c %s "$debug")
[ "$so_size" -le "$MAX_SO" ] || fail ".so is $so_size bytes, bound $MAX_SO"
[ "$a_size" -le "$MAX_STATIC" ] || fail ".a is $a_size bytes, bound $MAX_STATIC"
[ "$debug_size" -le "$MAX_DEBUG" ] || fail "the debug file is $debug_size bytes, bound $MAX_DEBUG"
echo "installed sizes: libraida_healing.so.$VERSION $so_size, libraida_healing.a $a_size," \
     ".debug/$debuglink $debug_size bytes"
[ "$(stat -c %a "$so")" = 755 ] && [ "$(stat -c %a "$lib/libraida_healing.a")" = 644 ] \
    || fail "modes of the installed libraries"

# V. symbol versions: each defined dynamic symbol is name@@NODE as raida_healing.map says
versions=$(nm -D --defined-only "$so" | awk '{print $3}')
[ -n "$versions" ] || fail "nm shows no export of $so"
while read -r sym; do
    name=${sym%%@*}
    node=$(awk -v s="$name;" '/^[A-Za-z_][A-Za-z0-9_.]* *\{/ {node=$1} $1 == s {print node}' "$ROOT/raida_healing.map")
    [ -n "$node" ] || fail "$so exports $sym, which raida_healing.map does not list"
    [ "$sym" = "$name@@$node" ] || fail "$so exports $sym, raida_healing.map says $name@@$node"
done <<< "$versions"
echo "symbol versions: $(echo "$versions" | wc -l) exports, each name@@NODE as raida_healing.map says"

# 3. SONAME, symlinks, pkg-config (shared and static)
readelf -d "$so" | contains "Library soname: \[libraida_healing.so.$SOVERSION\]" \
    || fail "installed library has no SONAME libraida_healing.so.$SOVERSION"
[ "$(readlink "$lib/libraida_healing.so.$SOVERSION")" = "libraida_healing.so.$VERSION" ] || fail "so.$SOVERSION link"
[ "$(readlink "$lib/libraida_healing.so")" = "libraida_healing.so.$SOVERSION" ] || fail "dev .so link"
[ -f "$prefix/include/raida_healing.h" ] || fail "no header"
export PKG_CONFIG_PATH=$lib/pkgconfig
native=$(sed 's/-lgcc_s *//' "$ROOT/build/native-static-libs")
grep -qx "native_libs=$native" "$lib/pkgconfig/raida_healing.pc" \
    || fail "native_libs is not rustc's native-static-libs less -lgcc_s ($native)"
grep -qx 'Libs.private: ${native_libs}' "$lib/pkgconfig/raida_healing.pc" || fail "Libs.private"
# the install said how the library will be found (a prefix the loader does not search)
note=$($MAKE_CMD --no-print-directory install PREFIX="$prefix" CARGO=false | tail -n 6)
echo "$note" | contains "is not a directory the dynamic loader searches" || fail "install note: $note"
echo "$note" | contains -- "-Wl,-rpath,$lib" && echo "$note" | contains "LD_LIBRARY_PATH=$lib" \
    && echo "$note" | contains "ld.so.conf.d" || fail "install note lacks a way: $note"
# shellcheck disable=SC2046,SC2086
$CC $CWARN c_tests/install_probe.c -o "$tmp/no_rpath" $(pkg-config --cflags --libs raida_healing)
set +e; "$tmp/no_rpath" 2>"$tmp/no_rpath.err"; code=$?; set -e
[ "$code" = 127 ] && grep -q "libraida_healing.so.$SOVERSION: cannot open shared object file" "$tmp/no_rpath.err" \
    || fail "a program without rpath should exit 127 here, got $code: $(cat "$tmp/no_rpath.err")"
LD_LIBRARY_PATH=$lib "$tmp/no_rpath" >/dev/null || fail "LD_LIBRARY_PATH=$lib does not find it"

# gdb on the installed (stripped) library: the debug file gives arguments and locals, and
# names the remapped source path, never this checkout's. The breakpoint is on the body
# every handler runs (`handle`, which the compiler may inline into cmd_find: gdb shows it as
# a frame of its own either way): its local `body`, then cmd_find's argument `ci`.
out=$(LD_LIBRARY_PATH=$lib timeout 120 gdb -batch -nx -ex 'set debuginfod enabled off' \
    -ex 'set breakpoint pending on' -ex 'break raida_healing::ffi::exports::handle' -ex run -ex 'info locals' -ex 'up' \
    -ex 'info args' \
    -ex 'info source' "$tmp/no_rpath" 2>&1) || fail "gdb: $out"
echo "$out" | contains "^ci = 0x" || fail "gdb shows no argument ci: $out"
echo "$out" | contains "^body = " || fail "gdb shows no local body: $out"
echo "$out" | contains -x "Compilation directory is /usr/src/raida-healing-$VERSION" \
    || fail "gdb: the compilation directory is not remapped: $out"
objcopy --decompress-debug-sections "$debug" "$tmp/plain.debug"
if grep -qaF "$ROOT" "$tmp/plain.debug"; then fail "the debug file names this checkout ($ROOT)"; fi
echo "gdb: arguments and locals of cmd_find from $debuglink; sources at /usr/src/raida-healing-$VERSION"

# R. the README's recipes, each in a private mount namespace of its own
recipe() {  # the code block after <!-- recipe: $1 --> in README.md
    awk -v name="$1" '$0 == "<!-- recipe: " name " -->" {found=1; next}
        found && /^```sh$/ {inside=1; next} inside && /^```$/ {exit} inside {print}' "$ROOT/README.md"
}
as_root=(unshare --mount --propagation private)
[ "$(id -u)" -eq 0 ] || as_root=(unshare --mount --propagation private --map-root-user)
# The recipes install into /usr/local and run ldconfig; a private mount namespace keeps
# that from the real system. A container without CAP_SYS_ADMIN (or with user namespaces
# blocked) cannot make one: say so plainly rather than fail later on a mount.
"${as_root[@]}" true 2>/dev/null || fail "install-test needs a private mount namespace" \
    "(${as_root[*]}): run it as root on a VM or in a privileged container"
for name in shared-system shared-prefix static static-whole; do
    block=$(recipe "$name")
    [ -n "$block" ] || fail "README.md has no recipe $name"
    work=$tmp/recipe-$name
    mkdir -p "$work/run" "$work/etc-up" "$work/etc-work" "$work/local-up" "$work/local-work"
    cp c_tests/install_probe.c "$work/run/server.c"
    printf '%s\n' "$block" > "$work/recipe.sh"
    cat > "$work/namespace.sh" <<EOF
set -euo pipefail
contains() { grep "\$@" >/dev/null; }
mount -t overlay overlay -o lowerdir=/etc,upperdir=$work/etc-up,workdir=$work/etc-work /etc
mount -t overlay overlay -o lowerdir=/usr/local,upperdir=$work/local-up,workdir=$work/local-work /usr/local
mount -t tmpfs tmpfs /opt
# The recipe's make is this checkout's make (the recipe runs where server.c is); as root
# in this namespace, sudo has nothing to do.
make() { command $MAKE_CMD -C "$ROOT" --no-print-directory "\$@"; }
sudo() { "\$@"; }
cd "$work/run"
unset PKG_CONFIG_PATH LD_LIBRARY_PATH
. "$work/recipe.sh" > "$work/out.txt" 2>&1 || { cat "$work/out.txt"; exit 1; }
grep -qx "install probe: cmd_find answered 252 without a server" "$work/out.txt" || { cat "$work/out.txt"; exit 1; }
case $name in
shared-system)
    grep -q "ran ldconfig: programs find /usr/local/lib/libraida_healing.so.$SOVERSION" "$work/out.txt" || { cat "$work/out.txt"; exit 1; }
    readelf -d server | contains "Shared library: \[libraida_healing.so.$SOVERSION\]" \
        || { echo "the system recipe's program does not need libraida_healing.so.$SOVERSION"; exit 1; }
    if readelf -d server | contains "RUNPATH\|RPATH"; then echo "the system recipe set an rpath"; exit 1; fi
    ldconfig -p | contains "libraida_healing.so.$SOVERSION .*/usr/local/lib/" \
        || { echo "the loader's cache does not name /usr/local/lib/libraida_healing.so.$SOVERSION"; exit 1; }
    make uninstall > "$work/uninstall.txt" 2>&1 || { cat "$work/uninstall.txt"; exit 1; }
    grep -q "ran ldconfig: the loader's cache no longer names /usr/local/lib/libraida_healing.so.$SOVERSION" \
        "$work/uninstall.txt" || { cat "$work/uninstall.txt"; exit 1; }
    if ldconfig -p | contains libraida_healing; then echo "uninstall left the library in the loader's cache"; exit 1; fi
    if [ -n "\$(find /usr/local -name '*raida*')" ]; then echo "uninstall left: \$(find /usr/local -name '*raida*')"; exit 1; fi ;;
shared-prefix)
    readelf -d server | contains "Shared library: \[libraida_healing.so.$SOVERSION\]" \
        || { echo "the prefix recipe's program does not need libraida_healing.so.$SOVERSION"; exit 1; }
    readelf -d server | contains "R.*PATH.*\[/opt/raida-healing/lib\]" \
        || { echo "the prefix recipe's program has no rpath /opt/raida-healing/lib"; exit 1; } ;;
static)
    if readelf -d server | contains libraida_healing; then echo "the static program needs the .so"; exit 1; fi ;;
static-whole)
    if readelf -l server | contains INTERP; then echo "the whole-static program has a loader"; exit 1; fi ;;
esac
EOF
    "${as_root[@]}" bash "$work/namespace.sh" || fail "README recipe $name failed"
    [ ! -e /opt/raida-healing ] && [ ! -e /usr/local/lib/libraida_healing.a ] \
        || fail "recipe $name left files outside its namespace"
    echo "README recipe $name: ran as written; the program works"
done

# 4. the ops tool: a launcher of the installed module, and the module importable
tool=$prefix/bin/raida-healing
pydir=$lib/raida-healing/python
[ -x "$tool" ] || fail "$tool is not executable"
[ -f "$pydir/raida_healing.py" ] || fail "no module $pydir/raida_healing.py"
grep -qx "sys.path.insert(0, \"$pydir\")" "$tool" || fail "the launcher does not name $pydir"
[ "$(wc -l < "$tool")" -lt 15 ] || fail "the launcher is more than a launcher"
grep -qx "INSTALLED_LIBRARY = \"$lib/libraida_healing.so.$SOVERSION\"" "$pydir/raida_healing.py" \
    || fail "the module does not name the installed library"
out=$(cd "$tmp" && env -u RAIDA_HEALING_LIB "$tool" check)
echo "$out" | contains -x "library: $lib/libraida_healing.so.$SOVERSION" || fail "tool check: $out"
echo "$out" | contains -x "check: ok" || fail "tool check: $out"
out=$(cd "$tmp" && env -u RAIDA_HEALING_LIB PYTHONPATH="$pydir" python3 -c \
    'import raida_healing; lib = raida_healing.Library(raida_healing.library_path(None)); print(lib.path, lib.conn_info_size())')
[ "$out" = "$lib/libraida_healing.so.$SOVERSION 336" ] || fail "import raida_healing: $out"
ls "$pydir"/__pycache__/raida_healing.*.pyc >/dev/null 2>&1 \
    || fail "running the tool wrote no bytecode into $pydir/__pycache__ (uninstall's check needs it)"
man_page=$prefix/share/man/man1/raida-healing.1
[ "$(stat -c %a "$man_page")" = 644 ] || fail "no man page $man_page (or not mode 644)"
rendered=$(MANWIDTH=100 man --warnings -l "$man_page" 2>"$tmp/man.err") || fail "man -l: $(cat "$tmp/man.err")"
[ ! -s "$tmp/man.err" ] || fail "man -l warns: $(cat "$tmp/man.err")"
for section in NAME DESCRIPTION COMMANDS "JSON OUTPUT"; do
    echo "$rendered" | contains -x "$section" || fail "the man page has no section $section"
done
subcommands=$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import raida_healing, argparse
p = raida_healing.build_parser()
print(" ".join(next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices))' "$pydir")
for sub in $subcommands; do
    echo "$rendered" | contains -x "   raida-healing $sub" || fail "the man page has no section for $sub"
    echo "$rendered" | contains "usage: raida-healing $sub" || fail "the man page lacks $sub's usage"
done
docdir=$prefix/share/doc/raida-healing
for f in LICENSE-MIT LICENSE-APACHE README.md CHANGELOG.md docs/legacy-host.md docs/standalone.md docs/abi.md; do
    cmp -s "$ROOT/$f" "$docdir/$f" || fail "$docdir/$f is not $f"
done
grep -q "Apache License" "$docdir/LICENSE-APACHE" && grep -q "^MIT License" "$docdir/LICENSE-MIT" \
    || fail "the licence texts"
echo "man page: renders without a warning, a section per subcommand ($subcommands);" \
     "licences and docs in share/doc/raida-healing"

# 5. every directory variable, staged under DESTDIR
stage=$tmp/stage
out=$($MAKE_CMD --no-print-directory install CARGO=false DESTDIR="$stage" PREFIX=/opt/rh \
    LIBDIR=/opt/rh/lib64 INCLUDEDIR=/opt/rh/inc BINDIR=/opt/rh/sbin)
echo "$out" | contains "staged under DESTDIR=$stage: the package's installation runs ldconfig" \
    || fail "a DESTDIR install does not say who runs ldconfig: $out"
for f in lib64/libraida_healing.so.$VERSION lib64/libraida_healing.so.$SOVERSION \
         lib64/libraida_healing.so lib64/libraida_healing.a lib64/.debug/$debuglink \
         lib64/pkgconfig/raida_healing.pc inc/raida_healing.h sbin/raida-healing \
         lib64/raida-healing/python/raida_healing.py share/man/man1/raida-healing.1 \
         share/doc/raida-healing/LICENSE-MIT share/doc/raida-healing/LICENSE-APACHE; do
    [ -e "$stage/opt/rh/$f" ] || fail "DESTDIR install lacks /opt/rh/$f"
done
[ -z "$(find "$stage" -path "$stage/opt/rh" -prune -o -type f -print)" ] || fail "files outside /opt/rh"
pc=$stage/opt/rh/lib64/pkgconfig/raida_healing.pc
grep -qx 'libdir=/opt/rh/lib64' "$pc" && grep -qx 'includedir=/opt/rh/inc' "$pc" \
    || fail "the .pc does not name LIBDIR/INCLUDEDIR: $(cat "$pc")"
grep -qx 'INSTALLED_LIBRARY = "/opt/rh/lib64/libraida_healing.so.'"$SOVERSION"'"' \
    "$stage/opt/rh/lib64/raida-healing/python/raida_healing.py" \
    || fail "the staged module does not name the final library path"
grep -qx 'sys.path.insert(0, "/opt/rh/lib64/raida-healing/python")' "$stage/opt/rh/sbin/raida-healing" \
    || fail "the staged launcher does not name the final module path"

# S. STRIP=0: as built, for a packager's own strip and debug-info split
raw=$tmp/unstripped
$MAKE_CMD --no-print-directory install PREFIX="$raw" CARGO=false STRIP=0 >/dev/null
sections "$raw/lib/libraida_healing.so.$VERSION" | contains '\.debug_info' || fail "STRIP=0: the .so has no .debug_info"
sections "$raw/lib/libraida_healing.so.$VERSION" | contains ' \.symtab ' || fail "STRIP=0: the .so has no symbol table"
readelf --string-dump=.gnu_debuglink "$raw/lib/libraida_healing.so.$VERSION" 2>&1 | contains "\[ *0\]" \
    && fail "STRIP=0: the .so has a debuglink"
[ ! -e "$raw/lib/.debug" ] || fail "STRIP=0 installed a debug file: $(ls "$raw/lib/.debug")"
cmp -s "$ROOT/target/release/libraida_healing.a" "$raw/lib/libraida_healing.a" 2>/dev/null \
    || [ -n "${CARGO_TARGET_DIR:-}" ] || fail "STRIP=0: the .a is not the one built"
$MAKE_CMD --no-print-directory uninstall PREFIX="$raw" STRIP=0 >/dev/null
[ ! -e "$raw" ] || fail "uninstall after STRIP=0 left: $(find "$raw")"
echo "STRIP=0: .so with debug info and symbol table, no debuglink, no debug file"

# 6. uninstall, and install without a build
$MAKE_CMD --no-print-directory uninstall PREFIX="$prefix" >/dev/null
left=$(cd "$prefix" && find . | sort | tr '\n' ' ')
[ "$left" = ". ./include ./include/other.h ./share " ] \
    || fail "uninstall left more (or less) than was there before: $left"
if out=$(CARGO_TARGET_DIR="$tmp/nothing-built" $MAKE_CMD --no-print-directory install \
        PREFIX="$tmp/p2" CARGO=false 2>&1); then
    fail "install without a build succeeded"
fi
echo "$out" | contains "is missing; build first: make && sudo make install" || fail "install without a build: $out"
[ ! -e "$tmp/p2" ] || fail "install without a build created $tmp/p2"
echo "install-test: builds nothing; stripped .so with debuglink + build-id matched debug file" \
     "(gdb: arguments, locals, remapped paths); .a without debug info; sizes bounded; SONAME" \
     ".so.$SOVERSION; native_libs from rustc; run-time lookup said and shown; the README's" \
     "4 recipes as written (system: uninstall runs ldconfig); tool launcher + importable module; man page;" \
     "licences; symbol versions; STRIP=0; LIBDIR/INCLUDEDIR/BINDIR/DESTDIR; uninstall leaves what was there before"
