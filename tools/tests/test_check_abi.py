#!/usr/bin/env python3
"""tools/check_abi.py fails where docs/abi.md says it must (part of `make check-abi`).

    test_check_abi.py [--cc COMPILER] [unittest options, e.g. -k NAME]

Against the committed baseline abi/ and version script raida_healing.map, with stand-in
libraries built here by --cc (default cc) from the baseline's export list (each a C file of
empty functions linked with a version script, so only the symbol table matters):
- the baseline's exports, versioned as raida_healing.map says, and the real header pass;
- the same exports with no symbol versions: fails, naming each unversioned export;
- one export under another node (RAIDA_HEALING_9): fails, naming it and both nodes;
- a version script listing a symbol the library does not export, or one symbol twice:
  fails;
- one export removed, SOVERSION unchanged: fails, naming it;
- the same with the SOVERSION raised: fails until the baseline is rewritten;
- a struct field's type changed in the header, SOVERSION unchanged: fails, naming the
  struct; a constant's value changed: fails;
- an extra exported symbol the header does not declare (a leaked #[no_mangle]): fails;
- an addition (a new export declared in the header): fails only asking for abi-baseline,
  and a rewritten baseline then passes with the same SOVERSION;
- a SOVERSION raised with no incompatible change: fails.
One unittest test method per behaviour. Ends with "N passed, M failed"; exits non-zero on
any failure.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import tally

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECK = os.path.join(ROOT, "tools", "check_abi.py")
HEADER = os.path.join(ROOT, "include", "raida_healing.h")
BASELINE = os.path.join(ROOT, "abi")
VERSION_SCRIPT = os.path.join(ROOT, "raida_healing.map")
NODE = "RAIDA_HEALING_0"

CC = "cc"  # the C compiler command for the stand-in libraries (--cc)


def run(so, header, soversion, baseline=BASELINE, write=False, script=VERSION_SCRIPT):
    cmd = [sys.executable, CHECK, "--so", so, "--header", header, "--soversion", soversion,
           "--baseline", baseline, "--version-script", script] + (["--write"] if write else [])
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


class CheckAbiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(BASELINE, "exports.txt")) as f:
            cls.exports = [line.split("@")[0] for line in f.read().split()]
        with open(os.path.join(BASELINE, "soversion")) as f:
            cls.soversion = f.read().strip()
        with open(HEADER) as f:
            cls.header_text = f.read()
        cls.tmp = tempfile.mkdtemp(prefix="check_abi.")
        cls.addClassCleanup(shutil.rmtree, cls.tmp)
        cls.full = cls.stand_in("full", cls.exports)

    # ---- fixtures ----

    @classmethod
    def stand_in(cls, name, symbols, nodes=None):
        """A shared library exporting exactly these (empty) functions, each under its node
        in `nodes` ({symbol: node}; default: all under NODE); nodes={} versions nothing."""
        src = os.path.join(cls.tmp, name + ".c")
        with open(src, "w") as f:
            f.write("".join("void %s(void) {}\n" % s for s in symbols))
        so = os.path.join(cls.tmp, name + ".so")
        if nodes is None:
            nodes = {s: NODE for s in symbols}
        link = []
        if nodes:
            link = ["-Wl,--version-script=" + cls.script(name, nodes)]
        subprocess.run(CC.split() + ["-shared", "-fPIC", "-o", so, src] + link, check=True)
        return so

    @classmethod
    def script(cls, name, nodes):
        """A version script putting each symbol of {symbol: node} under its node."""
        by_node = {}
        for symbol, node in nodes.items():
            by_node.setdefault(node, []).append(symbol)
        path = os.path.join(cls.tmp, name + ".map")
        with open(path, "w") as f:
            f.write("".join("%s {\n  global:\n%s  local:\n    *;\n};\n"
                            % (node, "".join("    %s;\n" % s for s in symbols))
                            for node, symbols in sorted(by_node.items())))
        return path

    @classmethod
    def header(cls, name, text):
        path = os.path.join(cls.tmp, name + ".h")
        with open(path, "w") as f:
            f.write(text)
        return path

    def removed_export(self):
        """The first export renamed away: its stand-in library, its header, its name."""
        removed = self.exports[0]
        less_header = self.header("less", self.header_text.replace(
            " %s(" % removed, " gone_%s(" % removed, 1))
        less = self.stand_in("less", [e for e in self.exports if e != removed]
                             + ["gone_" + removed])
        return less, less_header, removed

    def removed_script(self, removed):
        """The version script of removed_export's library."""
        return self.script("less", {s: NODE for s in self.exports if s != removed}
                           | {"gone_" + removed: NODE})

    def added_export(self):
        """raida_healing_new_export added to the exports and declared in the header."""
        header_text = self.header_text
        added_header = self.header("added", header_text.replace(
            "#endif", "size_t raida_healing_new_export(void);\n#endif", 1)
            if "#ifdef __cplusplus" not in header_text else header_text.replace(
            "#ifdef __cplusplus\n}", "size_t raida_healing_new_export(void);\n\n#ifdef __cplusplus\n}", 1))
        added = self.stand_in("added", self.exports + ["raida_healing_new_export"])
        return added, added_header

    def added_script(self):
        """raida_healing.map with raida_healing_new_export under NODE."""
        return self.script("added", {s: NODE for s in self.exports + ["raida_healing_new_export"]})

    def assertRun(self, result, code, *needles):
        """check_abi.py exited with code and its output holds every needle."""
        got, out = result
        msg = "exit %d (wanted %d), output:\n%s" % (got, code, out)
        self.assertEqual(got, code, msg)
        for needle in needles:
            self.assertIn(needle, out, msg)

    def write_baseline(self, added, added_header):
        """`make abi-baseline` on a copy of abi/ records the addition; returns the copy."""
        copy = tempfile.mkdtemp(prefix="abi.", dir=self.tmp)
        shutil.rmtree(copy)
        shutil.copytree(BASELINE, copy)
        self.assertRun(run(added, added_header, self.soversion, copy, write=True,
                           script=self.added_script()), 0, "abi baseline written")
        return copy

    # ---- the behaviours ----

    def test_baseline_exports_and_header_pass(self):
        self.assertRun(run(self.full, HEADER, self.soversion), 0,
                       "check-abi: %d exports" % len(self.exports))

    def test_unversioned_exports_fail(self):
        bare = self.stand_in("bare", self.exports, nodes={})
        result = run(bare, HEADER, self.soversion)
        self.assertRun(result, 1, *["exports %s without a symbol version" % name
                                    for name in self.exports])

    def test_export_under_another_node_fails(self):
        moved = self.exports[0]
        nodes = {s: NODE for s in self.exports}
        nodes[moved] = "RAIDA_HEALING_9"
        wrong = self.stand_in("wrong_node", self.exports, nodes)
        self.assertRun(run(wrong, HEADER, self.soversion), 1,
                       "exports %s@@RAIDA_HEALING_9, but" % moved,
                       "lists it under %s (wanted %s@@%s)" % (NODE, moved, NODE),
                       "export %s@@%s removed" % (moved, NODE))

    def test_script_listing_a_symbol_not_exported_fails(self):
        nodes = {s: NODE for s in self.exports + ["raida_healing_gone"]}
        self.assertRun(run(self.full, HEADER, self.soversion,
                           script=self.script("extra", nodes)), 1,
                       "lists raida_healing_gone under %s, which" % NODE)

    def test_script_listing_a_symbol_twice_fails(self):
        twice = self.script("twice", {s: NODE for s in self.exports})
        with open(twice, "a") as f:
            f.write("RAIDA_HEALING_1 {\n  global:\n    %s;\n} %s;\n" % (self.exports[0], NODE))
        self.assertRun(run(self.full, HEADER, self.soversion, script=twice), 1,
                       "lists %s twice (%s and RAIDA_HEALING_1)" % (self.exports[0], NODE))

    def test_removed_export_with_same_soversion_fails(self):
        less, less_header, removed = self.removed_export()
        self.assertRun(run(less, less_header, self.soversion,
                           script=self.removed_script(removed)), 1,
                       "incompatible ABI change with an unchanged SOVERSION",
                       "export %s@@%s removed" % (removed, NODE))

    def test_removed_export_with_raised_soversion_asks_for_baseline(self):
        less, less_header, removed = self.removed_export()
        self.assertRun(run(less, less_header, str(int(self.soversion) + 1),
                           script=self.removed_script(removed)), 1,
                       "SOVERSION raised", "make abi-baseline")

    def test_changed_struct_layout_with_same_soversion_fails(self):
        changed = self.header("struct", self.header_text.replace(
            "  uint32_t sn;\n} coin_t;", "  uint64_t sn;\n} coin_t;"))
        with open(changed) as f:
            self.assertNotEqual(f.read(), self.header_text, "coin_t's sn field not found")
        self.assertRun(run(self.full, changed, self.soversion), 1,
                       "incompatible ABI change", "struct coin_t changed", "uint64_t sn")

    def test_changed_constant_with_same_soversion_fails(self):
        constant = self.header("constant", self.header_text.replace(
            "#define RAIDA_STATUS_ALL_PASS 241", "#define RAIDA_STATUS_ALL_PASS 240"))
        self.assertRun(run(self.full, constant, self.soversion), 1,
                       "#define RAIDA_STATUS_ALL_PASS changed")

    def test_symbol_the_header_does_not_declare_fails(self):
        leaked = self.stand_in("leaked", self.exports + ["some_dependency_symbol"])
        self.assertRun(run(leaked, HEADER, self.soversion), 1,
                       "exports some_dependency_symbol, which the header does not declare")

    def test_addition_asks_for_baseline_to_record_it(self):
        added, added_header = self.added_export()
        self.assertRun(run(added, added_header, self.soversion, script=self.added_script()), 1,
                       "compatible additions", "export raida_healing_new_export@@%s added" % NODE)

    def test_abi_baseline_records_addition(self):
        self.write_baseline(*self.added_export())

    def test_recorded_addition_passes_with_same_soversion(self):
        added, added_header = self.added_export()
        copy = self.write_baseline(added, added_header)
        self.assertRun(run(added, added_header, self.soversion, copy,
                           script=self.added_script()), 0)

    def test_raised_soversion_without_incompatible_change_fails(self):
        self.assertRun(run(self.full, HEADER, str(int(self.soversion) + 1)), 1,
                       "the ABI is compatible")


def main():
    global CC
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cc", default="cc", help="the C compiler command (default cc)")
    args, rest = parser.parse_known_args()
    CC = args.cc
    return tally.run([sys.argv[0]] + rest)


if __name__ == "__main__":
    sys.exit(main())
