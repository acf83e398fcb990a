#!/usr/bin/env python3
"""tools/check_abi.py fails where docs/abi.md says it must (part of `make check-abi`).

Against the committed baseline abi/, with stand-in libraries built here from the baseline's
export list (each a C file of empty functions, so only the symbol table matters):
- the baseline's exports and the real header pass;
- one export removed, SOVERSION unchanged: fails, naming it;
- the same with the SOVERSION raised: fails until the baseline is rewritten;
- a struct field's type changed in the header, SOVERSION unchanged: fails, naming the
  struct; a constant's value changed: fails;
- an extra exported symbol the header does not declare (a leaked #[no_mangle]): fails;
- an addition (a new export declared in the header): fails only asking for abi-baseline,
  and a rewritten baseline then passes with the same SOVERSION;
- a SOVERSION raised with no incompatible change: fails.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECK = os.path.join(ROOT, "tools", "check_abi.py")
HEADER = os.path.join(ROOT, "include", "raida_healing.h")
BASELINE = os.path.join(ROOT, "abi")


def run(so, header, soversion, baseline=BASELINE, write=False):
    cmd = [sys.executable, CHECK, "--so", so, "--header", header, "--soversion", soversion,
           "--baseline", baseline] + (["--write"] if write else [])
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cc", default="cc")
    args = parser.parse_args()
    with open(os.path.join(BASELINE, "exports.txt")) as f:
        exports = f.read().split()
    with open(os.path.join(BASELINE, "soversion")) as f:
        soversion = f.read().strip()
    with open(HEADER) as f:
        header_text = f.read()
    tmp = tempfile.mkdtemp(prefix="check_abi.")
    passed = 0

    def stand_in(name, symbols):
        src = os.path.join(tmp, name + ".c")
        with open(src, "w") as f:
            f.write("".join("void %s(void) {}\n" % s for s in symbols))
        so = os.path.join(tmp, name + ".so")
        subprocess.run(args.cc.split() + ["-shared", "-fPIC", "-o", so, src], check=True)
        return so

    def header(name, text):
        path = os.path.join(tmp, name + ".h")
        with open(path, "w") as f:
            f.write(text)
        return path

    def expect(what, result, code, *needles):
        nonlocal passed
        got, out = result
        if got != code or any(n not in out for n in needles):
            print("FAIL %s: exit %d (wanted %d), output:\n%s" % (what, got, code, out))
            sys.exit(1)
        passed += 1
        print("ok   %s" % what)

    try:
        full = stand_in("full", exports)
        expect("the baseline's exports and the header pass", run(full, HEADER, soversion), 0,
               "check-abi: %d exports" % len(exports))

        removed = exports[0]
        less_header = header("less", header_text.replace(" %s(" % removed, " gone_%s(" % removed, 1))
        less = stand_in("less", [e for e in exports if e != removed] + ["gone_" + removed])
        expect("a removed export with the same SOVERSION fails",
               run(less, less_header, soversion), 1,
               "incompatible ABI change with an unchanged SOVERSION", "export %s removed" % removed)
        expect("a removed export with a raised SOVERSION asks for the baseline",
               run(less, less_header, str(int(soversion) + 1)), 1,
               "SOVERSION raised", "make abi-baseline")

        changed = header("struct", header_text.replace("  uint32_t sn;\n} coin_t;",
                                                       "  uint64_t sn;\n} coin_t;"))
        assert changed and open(changed).read() != header_text, "coin_t's sn field not found"
        expect("a changed struct layout with the same SOVERSION fails",
               run(full, changed, soversion), 1,
               "incompatible ABI change", "struct coin_t changed", "uint64_t sn")
        constant = header("constant", header_text.replace(
            "#define RAIDA_STATUS_ALL_PASS 241", "#define RAIDA_STATUS_ALL_PASS 240"))
        expect("a changed constant with the same SOVERSION fails",
               run(full, constant, soversion), 1, "#define RAIDA_STATUS_ALL_PASS changed")

        leaked = stand_in("leaked", exports + ["some_dependency_symbol"])
        expect("a symbol the header does not declare fails",
               run(leaked, HEADER, soversion), 1,
               "exports some_dependency_symbol, which the header does not declare")

        added_header = header("added", header_text.replace(
            "#endif", "size_t raida_healing_new_export(void);\n#endif", 1)
            if "#ifdef __cplusplus" not in header_text else header_text.replace(
            "#ifdef __cplusplus\n}", "size_t raida_healing_new_export(void);\n\n#ifdef __cplusplus\n}", 1))
        added = stand_in("added", exports + ["raida_healing_new_export"])
        expect("an addition asks for the baseline to record it",
               run(added, added_header, soversion), 1,
               "compatible additions", "export raida_healing_new_export added")
        copy = os.path.join(tmp, "abi")
        shutil.copytree(BASELINE, copy)
        expect("abi-baseline records it", run(added, added_header, soversion, copy, write=True),
               0, "abi baseline written")
        expect("then the same SOVERSION passes", run(added, added_header, soversion, copy), 0)
        expect("a raised SOVERSION without an incompatible change fails",
               run(full, HEADER, str(int(soversion) + 1)), 1, "the ABI is compatible")
    finally:
        shutil.rmtree(tmp)
    print("test_check_abi: %d passed, 0 failed" % passed)


if __name__ == "__main__":
    main()
