#!/usr/bin/env python3
"""Checks that every reference in the repository resolves inside it (part of `make test`).

Over every file git tracks:
- each relative markdown link `[text](path#anchor)` names a file that exists and, when it
  has an anchor, a heading of that file (anchors made the way GitHub makes them);
- each `docs/<name>.md` mentioned anywhere exists, and each bare `<name>.md` mentioned in
  a file exists at the top, in docs/ or next to that file;
- no file cites a folder outside the repository (`../shared`, `/work/shared`);
- no file names a tracker issue by number (history belongs in CHANGELOG.md and commits);
- the status table of docs/wire-protocol.md matches the RAIDA_STATUS_* macros of
  include/raida_healing.h, the header cbindgen generates from src/protocol.rs;
- the export table of docs/abi.md ("Every export") lists exactly the header's functions,
  each with the header's parameter and return types;
- README.md's settings table holds exactly the rows of the settings table in
  src/settings.rs, in its order and rendered as `Setting::readme_row` renders them
  (variable, values, default, effect), then the ops tool's own settings (TOOL_SETTINGS:
  documented in the same table, read only by the tool, so only their presence and the
  tool's use of them are checked).

Files: those git tracks, or in a source tree without git (a `git archive` tarball) every
file below the top folder except build output.

Standard library only. Prints every problem found, then exits 1 if there was any.
"""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LINK = re.compile(r"\[[^\]]*\]\(([^()\s]+)\)")
DOCS_REF = re.compile(r"(?<![\w/.-])docs/[\w.-]+\.md\b")
BARE_MD = re.compile(r"(?<![\w/.-])([A-Za-z0-9_-]+\.md)\b")
OUTSIDE = re.compile(r"\.\./shared\b|/work/shared\b")
ISSUE_NUMBER = re.compile(r"\bissues? #?\d+\b", re.IGNORECASE)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
STATUS_ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*\w+\s*\|\s*(RAIDA_STATUS_\w+)\s*\|")
STATUS_MACRO = re.compile(r"^#define\s+(RAIDA_STATUS_\w+)\s+(\d+)\b", re.MULTILINE)

# This checker names the patterns it looks for, so it is exempt from the last two rules.
SELF = "tools/check_docs.py"


SKIP_DIRS = {".git", "target", "build", "__pycache__"}


def tracked_files():
    try:
        run = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], capture_output=True)
    except OSError:
        run = None
    if run is not None and run.returncode == 0 and run.stdout:
        return [p for p in run.stdout.decode().split("\0") if p]
    files = []
    for top, dirs, names in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not
                         (top == os.path.join(ROOT, "fuzz") and d in ("target", "artifacts")))
        files += [os.path.relpath(os.path.join(top, n), ROOT) for n in sorted(names)]
    return files


def read_text(path):
    try:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            return f.read()
    except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
        return None  # binary (fuzz seeds) or a tracked file deleted in the worktree


def without_code_blocks(text):
    """Markdown lines outside fenced code blocks, with their 1-based numbers."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def github_anchors(text):
    """The anchors GitHub gives a markdown file's headings."""
    anchors, seen = set(), {}
    for _, line in without_code_blocks(text):
        m = HEADING.match(line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(2).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else "%s-%d" % (slug, count))
    return anchors


def check_links(path, text, problems):
    base = os.path.dirname(path)
    for number, line in without_code_blocks(text):
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # http:, https:, mailto:
            file_part, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(base, file_part)) if file_part else path
            full = os.path.join(ROOT, dest)
            if not os.path.exists(full):
                problems.append("%s:%d: link to missing %s" % (path, number, target))
                continue
            if anchor:
                dest_text = read_text(dest) if dest.endswith(".md") else None
                if dest_text is None or anchor not in github_anchors(dest_text):
                    problems.append("%s:%d: no heading #%s in %s" % (path, number, anchor, dest))


def check_mentions(path, text, problems):
    here = os.path.dirname(path)
    for number, line in enumerate(text.splitlines(), 1):
        for ref in DOCS_REF.findall(line):
            if not os.path.isfile(os.path.join(ROOT, ref)):
                problems.append("%s:%d: %s does not exist" % (path, number, ref))
        for name in BARE_MD.findall(line):
            places = [name, os.path.join("docs", name), os.path.join(here, name)]
            if not any(os.path.isfile(os.path.join(ROOT, p)) for p in places):
                problems.append("%s:%d: %s is not in the repository" % (path, number, name))
        if path == SELF:
            continue
        if OUTSIDE.search(line):
            problems.append("%s:%d: cites a folder outside the repository" % (path, number))
        if ISSUE_NUMBER.search(line):
            problems.append("%s:%d: names an issue number" % (path, number))


def check_status_table(problems):
    """docs/wire-protocol.md's status table against the generated header, both ways."""
    with open(os.path.join(ROOT, "docs/wire-protocol.md"), encoding="utf-8") as f:
        table = {name: int(code) for line in f
                 for code, name in STATUS_ROW.findall(line)}
    with open(os.path.join(ROOT, "include/raida_healing.h"), encoding="utf-8") as f:
        header = {name: int(code) for name, code in STATUS_MACRO.findall(f.read())}
    if not header:
        problems.append("include/raida_healing.h: no RAIDA_STATUS_* macros found")
    if table != header:
        for name in sorted(set(table) | set(header)):
            if table.get(name) != header.get(name):
                problems.append("status %s: docs/wire-protocol.md says %s, the header %s"
                                % (name, table.get(name), header.get(name)))


EXPORT_ROW = re.compile(r"^\|\s*`(\w+)`\s*\|\s*`([^`]*)`\s*\|")


def normalized_signature(text):
    """A C prototype without names of struct tags, spaces or parameter names' spacing."""
    text = re.sub(r"\bstruct\s+", "", text)
    text = re.sub(r"\s+", " ", text).strip().rstrip(";")
    return re.sub(r"\s*([*(),\[\]])\s*", r"\1", text)


def check_export_table(problems):
    """docs/abi.md's "Every export" table against the header's function declarations."""
    with open(os.path.join(ROOT, "docs/abi.md"), encoding="utf-8") as f:
        text = f.read()
    start = text.find("## Every export")
    if start < 0:
        problems.append("docs/abi.md: no section \"Every export\"")
        return
    end = text.find("\n## ", start + 3)
    table = {}
    for line in text[start:end if end > 0 else len(text)].splitlines():
        m = EXPORT_ROW.match(line)
        if m and m.group(1) != "symbol":
            table[m.group(1)] = normalized_signature(m.group(2))
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from check_abi import declarations  # the one header parser (make check-abi's)
    with open(os.path.join(ROOT, "include/raida_healing.h"), encoding="utf-8") as f:
        header = {key.split(" ", 1)[1]: normalized_signature(decl)
                  for key, decl in declarations(f.read()).items() if key.startswith("function ")}
    if not header:
        problems.append("include/raida_healing.h: no function declarations found")
    for name in sorted(set(table) | set(header)):
        if name not in table:
            problems.append("docs/abi.md: the export table lacks %s (declared in the header)" % name)
        elif name not in header:
            problems.append("docs/abi.md: the export table lists %s, which the header does not "
                            "declare" % name)
        elif table[name] != header[name]:
            problems.append("docs/abi.md: %s is `%s` in the export table, `%s` in the header"
                            % (name, table[name], header[name]))


# A settings_table! row of src/settings.rs:
#     field: Type = "NAME",
#         Values::Millis { min: 1, max: 3_600_000 }, default "32000",
#         "what it does";
SETTING_ROW = re.compile(
    r'^\s*\w+:\s*[^=;]+?=\s*"(RAIDA_HEALING_\w+)",\s*'
    r'Values::(Millis|Count|Names|Text)\s*(\{[^}]*\}|\(&\[[^\]]*\]\)|\("[^"]*"\)),\s*'
    r'default\s*"([^"]*)",\s*"((?:[^"\\]|\\.)*)";', re.MULTILINE)
README_SETTING = re.compile(r"^\|\s*`(RAIDA_HEALING_\w+)`\s*\|")

# Settings of the ops tool, not of the library: documented in README's settings table,
# read only by the named file (the library never sees them).
TOOL_SETTINGS = {"RAIDA_HEALING_LIB": "tools/raida_healing.py"}


def library_settings(source):
    """The README rows the settings table of src/settings.rs's text `source` asks for."""
    body = source[source.find("settings_table! {"):]
    rows = []
    for name, kind, values, default, doc in SETTING_ROW.findall(body):
        if kind == "Names":
            shown = ", ".join("`%s`" % n for n in re.findall(r'"([^"]*)"', values))
        elif kind == "Text":
            shown = re.search(r'"([^"]*)"', values).group(1)
        else:
            bounds = dict(re.findall(r"(min|max):\s*([\d_]+)", values))
            shown = "%s - %s" % (bounds["min"].replace("_", ""), bounds["max"].replace("_", ""))
            if kind == "Millis":
                shown += " ms"
        doc = doc.replace('\\"', '"').replace("\\\\", "\\")
        rows.append((name, "| `%s` | %s | %s | %s |" % (name, shown, default or "unset", doc)))
    return rows


def check_settings_table(problems, readme=None, source=None, tool_sources=None):
    """README.md's settings table against src/settings.rs (and the ops tool's rows)."""
    if readme is None:
        readme = read_text("README.md") or ""
    if source is None:
        source = read_text("src/settings.rs") or ""
    expected = library_settings(source)
    if not expected:
        problems.append("src/settings.rs: no row found in settings_table!")
    start = readme.find("\n## Settings")
    end = readme.find("\n## ", start + 3)
    section = readme[start:end if end > 0 else len(readme)] if start >= 0 else ""
    rows = [line.strip() for line in section.splitlines() if README_SETTING.match(line)]
    library_rows = [r for r in rows if README_SETTING.match(r).group(1) not in TOOL_SETTINGS]
    got = {README_SETTING.match(r).group(1): r for r in library_rows}
    for name, row in expected:
        if name in got and got[name] != row:
            problems.append("README.md: the settings row of %s differs from src/settings.rs; "
                            "it should read\n  %s" % (name, row))
    want = [name for name, _ in expected]
    have = [README_SETTING.match(r).group(1) for r in library_rows]
    for name in want:
        if name not in have:
            problems.append("README.md: the settings table lacks %s (src/settings.rs)" % name)
    for name in have:
        if name not in want:
            problems.append("README.md: the settings table lists %s, which src/settings.rs "
                            "does not" % name)
    if sorted(want) == sorted(have) and want != have:
        problems.append("README.md: the settings rows are not in src/settings.rs's order")
    for name, path in TOOL_SETTINGS.items():
        if not any(README_SETTING.match(r).group(1) == name for r in rows):
            problems.append("README.md: the settings table lacks %s (read by %s)" % (name, path))
        text = (tool_sources or {}).get(path, read_text(path) if tool_sources is None else "")
        if name not in (text or ""):
            problems.append("%s: does not read %s, which README.md documents" % (path, name))


def main():
    problems = []
    files = tracked_files()
    for path in files:
        text = read_text(path)
        if text is None:
            continue
        if path.endswith(".md"):
            check_links(path, text, problems)
        check_mentions(path, text, problems)
    check_status_table(problems)
    check_export_table(problems)
    check_settings_table(problems)
    for line in problems:
        print(line)
    if problems:
        print("check-docs: %d problem(s)" % len(problems))
        return 1
    print("check-docs: every link and document reference of %d files resolves; "
          "the status and export tables match the header; the settings table matches "
          "src/settings.rs" % len(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
