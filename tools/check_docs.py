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
  include/raida_healing.h, the header cbindgen generates from src/protocol.rs.

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


def tracked_files():
    out = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], check=True,
                         capture_output=True).stdout
    return [p for p in out.decode().split("\0") if p]


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
    for line in problems:
        print(line)
    if problems:
        print("check-docs: %d problem(s)" % len(problems))
        return 1
    print("check-docs: every link and document reference of %d files resolves; "
          "status table matches the header" % len(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
