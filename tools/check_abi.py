#!/usr/bin/env python3
"""The ABI guard of `make test` (`make check-abi`), standard library only.

    check_abi.py --so LIB.so --header raida_healing.h --soversion N --baseline abi/
                 --version-script raida_healing.map [--write]

Four views of the C ABI must agree:
1. what the shared library exports: `nm -D --defined-only` of the built .so (every
   defined dynamic symbol, so a dependency's `#[no_mangle]` function that leaks into the
   server's namespace is seen), each with its symbol version;
2. the functions the header declares;
3. the version script raida_healing.map: the node each export belongs to;
4. the committed baseline: abi/exports.txt (one `symbol@@NODE` a line) and
   abi/declarations.txt (every function prototype, struct, typedef and #define of the
   header, one a line, comments and spacing removed), recorded with the SOVERSION in
   abi/soversion.

1 and 2 must be the same set. Every export must carry, as its default version (`@@`), the
node the version script lists it under: an unversioned export, one of another node, a
symbol the script lists twice or that the library does not export, all fail. A symbol
that moves to another node is, against the baseline, one removed and one added. Against the baseline (the rule of docs/abi.md, "When the
SOVERSION changes"):
- a symbol or declaration removed, or a declaration changed (a struct's fields, a
  prototype, a constant's value), is an incompatible change: it fails while the SOVERSION
  equals the baseline's, and after the SOVERSION was raised it fails until the baseline is
  rewritten (`make abi-baseline`);
- an addition is compatible: the SOVERSION stays, and the baseline must record it
  (`make abi-baseline`) so that removing it later is caught.
--write rewrites the baseline from the library and header given (`make abi-baseline`).
Prints what differs; exit 0 when nothing does, 1 otherwise, 2 on a usage error.
"""

import argparse
import os
import re
import subprocess
import sys

FUNCTION = re.compile(r"\b([A-Za-z_]\w*)\s*\([^()]*\)$")
DEFINE = re.compile(r"^#define\s+([A-Za-z_]\w*)\s*(.*)$")
TYPEDEF_NAME = re.compile(r"\b([A-Za-z_]\w*)$")
STRUCT_TAG = re.compile(r"^(?:typedef\s+)?(struct|union|enum)\s+([A-Za-z_]\w*)")


def exported_symbols(so_path):
    """{name: version} of the library's defined dynamic symbols: `@@NODE` for a default
    version, `@NODE` for a hidden one, "" for an unversioned symbol. The version
    definitions themselves (absolute symbols named like their node) are left out."""
    out = subprocess.run(["nm", "-D", "--defined-only", so_path], check=True,
                         capture_output=True, text=True).stdout
    symbols = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        name, at, version = fields[2].partition("@")
        version = at + version
        # GNU ld defines each version node as an absolute symbol of its own name.
        if fields[1] == "A" and version in ("", "@@" + name, "@" + name):
            continue
        symbols[name] = version
    return symbols


def version_nodes(script_text):
    """{symbol: node} of a GNU version script (`NODE { global: a; b; local: *; } PARENT;`),
    and the problems of the script itself (a symbol listed twice, no node)."""
    text = re.sub(r"/\*.*?\*/", " ", script_text, flags=re.DOTALL)
    text = re.sub(r"#[^\n]*", " ", text)
    nodes, problems = {}, []
    for node, body in re.findall(r"([A-Za-z_][\w.]*)\s*\{(.*?)\}", text, flags=re.DOTALL):
        body = body.split("local:")[0].replace("global:", " ")
        for symbol in (s.strip() for s in body.split(";")):
            if not symbol:
                continue
            if symbol in nodes:
                problems.append("the version script lists %s twice (%s and %s)"
                                % (symbol, nodes[symbol], node))
            nodes[symbol] = node
    if not nodes:
        problems.append("the version script lists no symbol under a node")
    return nodes, problems


def declarations(header_text):
    """{key: normalized declaration} for every #define, prototype, struct and typedef."""
    text = re.sub(r"/\*.*?\*/", " ", header_text, flags=re.DOTALL)
    text = re.sub(r"//[^\n]*", " ", text)
    # A preprocessor line ends at a newline not escaped by a backslash: join the rest
    # (RAIDA_HEALING_COMMANDS spans one line per command).
    text = re.sub(r"\\[ \t]*\n", " ", text)
    found = {}
    code = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            m = DEFINE.match(stripped)
            if m and not m.group(1).endswith("_H"):
                found["#define " + m.group(1)] = "#define %s %s" % (
                    m.group(1), re.sub(r"\s+", " ", m.group(2).strip()))
            continue
        code.append(stripped)
    code = " ".join(code)
    code = re.sub(r'extern\s+"C"\s*\{|\}\s*//\s*extern\s*"C"', " ", code)
    depth, start = 0, 0
    pieces = []
    for i, ch in enumerate(code):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == ";" and depth == 0:
            pieces.append(code[start:i])
            start = i + 1
    for piece in pieces:
        decl = re.sub(r"\s+", " ", piece).strip()
        decl = re.sub(r"\s*([{}();,*\[\]])\s*", r"\1", decl)
        if not decl:
            continue
        m = FUNCTION.search(decl)
        if m and "{" not in decl and not decl.startswith("typedef"):
            found["function " + m.group(1)] = decl
            continue
        tag = STRUCT_TAG.match(decl)
        name = TYPEDEF_NAME.search(decl)
        if tag:
            key = "%s %s" % (tag.group(1), tag.group(2))
        elif name:
            key = "type " + name.group(1)
        else:
            key = "declaration " + decl
        found[key] = decl
    return found


def read_lines(path):
    with open(path) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def decl_dict(lines):
    """Baseline lines `key<TAB>declaration` -> dict."""
    return dict(line.split("\t", 1) for line in lines)


def main():
    parser = argparse.ArgumentParser(description="the ABI guard (make check-abi)")
    parser.add_argument("--so", required=True)
    parser.add_argument("--header", required=True)
    parser.add_argument("--soversion", required=True)
    parser.add_argument("--baseline", required=True)
    parser.add_argument("--version-script", required=True)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    versions = exported_symbols(args.so)
    exports = set(versions)
    with open(args.header) as f:
        decls = declarations(f.read())
    header_functions = {k.split(" ", 1)[1] for k in decls if k.startswith("function ")}
    problems = []
    for name in sorted(exports - header_functions):
        problems.append("%s exports %s, which the header does not declare (a dependency's "
                        "#[no_mangle] symbol, or a missing declaration)" % (args.so, name))
    for name in sorted(header_functions - exports):
        problems.append("the header declares %s, which %s does not export" % (name, args.so))
    with open(args.version_script) as f:
        nodes, script_problems = version_nodes(f.read())
    problems += ["%s: %s" % (args.version_script, p) for p in script_problems]
    for name in sorted(exports):
        want, got = nodes.get(name), versions[name]
        if want is None:
            problems.append("%s exports %s, which %s does not list under a version node"
                            % (args.so, name, args.version_script))
        elif got == "":
            problems.append("%s exports %s without a symbol version (%s lists it under %s)"
                            % (args.so, name, args.version_script, want))
        elif got != "@@" + want:
            problems.append("%s exports %s%s, but %s lists it under %s (wanted %s@@%s)"
                            % (args.so, name, got, args.version_script, want, name, want))
    for name in sorted(set(nodes) - exports):
        problems.append("%s lists %s under %s, which %s does not export"
                        % (args.version_script, name, nodes[name], args.so))
    # The baseline records each export with its version: a symbol that changes node is
    # an old name@@NODE removed.
    exports = {name + versions[name] for name in exports}

    paths = {n: os.path.join(args.baseline, n)
             for n in ("exports.txt", "declarations.txt", "soversion")}
    if args.write:
        if problems:
            print("\n".join(problems))
            print("check-abi: the library and the header disagree; the baseline is not written")
            return 1
        os.makedirs(args.baseline, exist_ok=True)
        with open(paths["exports.txt"], "w") as f:
            f.write("".join(n + "\n" for n in sorted(exports)))
        with open(paths["declarations.txt"], "w") as f:
            f.write("".join("%s\t%s\n" % (k, decls[k]) for k in sorted(decls)))
        with open(paths["soversion"], "w") as f:
            f.write(args.soversion + "\n")
        print("abi baseline written: %d exports, %d declarations, SOVERSION %s"
              % (len(exports), len(decls), args.soversion))
        return 0

    try:
        base_exports = set(read_lines(paths["exports.txt"]))
        base_decls = decl_dict(read_lines(paths["declarations.txt"]))
        base_soversion = read_lines(paths["soversion"])[0]
    except (OSError, ValueError, IndexError) as e:
        print("check-abi: cannot read the baseline in %s: %s" % (args.baseline, e))
        return 2

    incompatible, added = [], []
    for name in sorted(base_exports - exports):
        incompatible.append("export %s removed" % name)
    for name in sorted(exports - base_exports):
        added.append("export %s added" % name)
    for key in sorted(set(base_decls) | set(decls)):
        old, new = base_decls.get(key), decls.get(key)
        if old == new:
            continue
        if new is None:
            incompatible.append("%s removed (was: %s)" % (key, old))
        elif old is None:
            added.append("%s added: %s" % (key, new))
        else:
            incompatible.append("%s changed:\n      was: %s\n      now: %s" % (key, old, new))

    if incompatible and args.soversion == base_soversion:
        problems.append("incompatible ABI change with an unchanged SOVERSION %s (raise it in "
                        "build.rs, then make abi-baseline; docs/abi.md):" % args.soversion)
        problems += ["  " + c for c in incompatible]
    elif incompatible:
        problems.append("SOVERSION raised %s -> %s for these incompatible changes; record "
                        "them: make abi-baseline" % (base_soversion, args.soversion))
        problems += ["  " + c for c in incompatible]
    elif args.soversion != base_soversion:
        problems.append("SOVERSION changed %s -> %s but the ABI is compatible with the "
                        "baseline: a compatible change keeps the SOVERSION (docs/abi.md)"
                        % (base_soversion, args.soversion))
    if added:
        problems.append("compatible additions the baseline does not record yet (the "
                        "SOVERSION stays %s): make abi-baseline" % base_soversion)
        problems += ["  " + a for a in added]

    if problems:
        print("\n".join(problems))
        print("check-abi: FAILED")
        return 1
    print("check-abi: %d exports = the header's %d functions = abi/exports.txt, each "
          "versioned as %s says (%s); %d declarations = abi/declarations.txt; SOVERSION %s"
          % (len(exports), len(header_functions), args.version_script,
             ", ".join(sorted(set(nodes.values()))), len(decls), args.soversion))
    return 0


if __name__ == "__main__":
    sys.exit(main())
