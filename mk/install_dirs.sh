#!/bin/sh
# make install's directories: creates each DIR (under DESTDIR) with every missing parent,
# and appends the ones it created to the list file MANIFEST (a path below DESTDIR, itself
# in a directory only this project uses) so that `make uninstall` removes exactly those
# again and no directory that was there before. Usage: install_dirs.sh DESTDIR MANIFEST DIR...
# A staged install (DESTDIR set) records nothing: the package manager removes what it put.
set -e
destdir=$1 manifest=$2
shift 2
created=
for dir in "$@"; do
    missing= d=$dir
    while [ -n "$d" ] && [ "$d" != / ] && [ ! -d "$destdir$d" ]; do
        missing="$d
$missing"
        d=$(dirname "$d")
    done
    install -d "$destdir$dir"
    created="$created$missing"
done
if [ -z "$destdir" ]; then
    mkdir -p "$(dirname "$manifest")"
    { cat "$manifest" 2>/dev/null || true; printf '%s' "$created"; } | sed '/^$/d' | sort -u > "$manifest.new"
    mv "$manifest.new" "$manifest"
    chmod 0644 "$manifest"
fi
