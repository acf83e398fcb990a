#!/usr/bin/env python3
"""The sections of raida-healing(1) that help2man cannot take from `--help` alone, written
as a help2man include file (`help2man --include`), from the tool's own argparse parser:

    man_sections.py > build/raida-healing.h2m

COMMANDS holds each subcommand's full `--help`, in the parser's order, so a subcommand
added to build_parser() is in the man page with nothing else to change. JSON OUTPUT,
ENVIRONMENT and SEE ALSO point to the documentation. Standard library only.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import raida_healing  # noqa: E402


def roff_text(text):
    """Plain text as roff lines: backslashes escaped, no line starting a request."""
    lines = []
    for line in text.rstrip("\n").splitlines():
        line = line.replace("\\", "\\e")
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def subcommands(parser):
    """(name, subparser) of every subcommand, in the order build_parser() adds them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices.items())
    return []


def main():
    os.environ["COLUMNS"] = "80"  # argparse wraps at the terminal's width otherwise
    parser = raida_healing.build_parser()
    out = ["[COMMANDS]"]
    for name, sub in subcommands(parser):
        out.append('.SS "%s %s"' % (parser.prog, name))
        out.append(".nf")
        out.append(roff_text(sub.format_help()))
        out.append(".fi")
    out += [
        "[JSON OUTPUT]",
        "With \\fB\\-\\-json\\fR every subcommand prints one JSON object on stdout, whose "
        "\\fBschema_version\\fR is %d; each field of each subcommand's object is described "
        "in docs/standalone.md (installed under share/doc/raida-healing), section "
        "\"JSON output\"." % raida_healing.JSON_SCHEMA_VERSION,
        "[ENVIRONMENT]",
        ".TP", "\\fB%s\\fR" % raida_healing.LIBRARY_ENV,
        "the library to load when \\fB\\-\\-lib\\fR is not given.",
        ".TP", "\\fBRAIDA_HEALING_LOG\\fR",
        "error, warning or debug: the library's log lines on stderr.",
        "[SEE ALSO]",
        "README.md and docs/standalone.md in share/doc/raida-healing.",
    ]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
