#!/bin/sh
# The end of `make install`: how programs will find libraida_healing.so.SOVERSION at run
# time. Usage: install_note.sh DESTDIR LIBDIR SOVERSION PYTHONDIR [uninstall] ($LDCONFIG:
# the ldconfig to run). Into the system (no DESTDIR, LIBDIR a directory the dynamic loader
# searches) as root: runs ldconfig. Anywhere else: says which of rpath, LD_LIBRARY_PATH or
# /etc/ld.so.conf.d makes the library found. With `uninstall` (the end of `make
# uninstall`): runs ldconfig where install did, so the loader's cache names no deleted
# file, and says nothing else.
destdir=$1 libdir=$2 soversion=$3 pythondir=$4 mode=${5:-install}
# ldconfig lives in /sbin, which is not on a non-root user's PATH on Debian.
ldconfig=${LDCONFIG:-$(command -v ldconfig || echo /sbin/ldconfig)}
so=libraida_healing.so.$soversion

if [ -n "$destdir" ]; then
    [ "$mode" = uninstall ] && exit 0
    echo "staged under DESTDIR=$destdir: the package's installation runs ldconfig" \
         "(Debian: a triggers/postinst ldconfig) so the loader finds $libdir/$so"
    exit 0
fi

# The loader's directories: those ldconfig scans (ld.so.conf, ld.so.conf.d) and the
# built-in ones.
real_libdir=$(readlink -f "$libdir")
searched=no
for d in $($ldconfig -v -N 2>/dev/null | sed -n 's/^\(\/[^:]*\):.*/\1/p') /lib /usr/lib /lib64 /usr/lib64; do
    if [ "$(readlink -f "$d" 2>/dev/null)" = "$real_libdir" ]; then searched=yes; break; fi
done

if [ "$mode" = uninstall ]; then
    if [ "$searched" = yes ] && [ "$(id -u)" -eq 0 ]; then
        $ldconfig || { echo "make uninstall: ldconfig failed"; exit 1; }
        echo "ran ldconfig: the loader's cache no longer names $libdir/$so"
    fi
    exit 0
fi

if [ "$searched" = yes ]; then
    if [ "$(id -u)" -eq 0 ]; then
        $ldconfig || { echo "make install: ldconfig failed"; exit 1; }
        echo "ran ldconfig: programs find $libdir/$so through the loader's cache"
    else
        echo "$libdir is a directory the loader searches: run 'sudo ldconfig' so programs find $so"
    fi
else
    echo "$libdir is not a directory the dynamic loader searches; a program linked with"
    echo "-lraida_healing finds $so at run time through one of:"
    echo "  - an rpath, set when linking: -Wl,-rpath,$libdir (the README's recipe);"
    echo "  - LD_LIBRARY_PATH=$libdir in the program's environment;"
    echo "  - echo $libdir > /etc/ld.so.conf.d/raida-healing.conf && ldconfig (as root)."
fi
echo "ops scripts: 'import raida_healing' with PYTHONPATH=$pythondir (the raida-healing command needs nothing)"
