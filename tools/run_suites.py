#!/usr/bin/env python3
"""Runs the suites of `make test` one by one and says how each went (standard library only).

    run_suites.py --make MAKE --logs DIR [--stop] SUITE...

Each suite runs as `MAKE --no-print-directory SUITE` with its whole output in DIR/SUITE.log;
the screen gets one line per suite, `[i/N] SUITE ... passed in T s` (or FAILED), and at the
end the tally `suites: P passed, F failed` alone on its line (`, S skipped` after --stop),
then `time: N suites in T s`. For a failed suite it also prints the first line of its log
that reports an error (not a warning: a compiler's or assembler's warnings can precede the
real cause by hundreds of lines), the log's path and the log's last 8 lines. Without
--stop every suite runs, so the tally is complete; with --stop the first failure ends the
run. Exit status 0 only when every suite passed.
"""

import argparse
import os
import re
import subprocess
import sys
import time

# Lines that state a failure, in the words the tools of this project use: rustc and gcc
# ("error:", "error[E..]"), the test harnesses ("FAILED", "panicked at", "N failed" with
# N > 0, Python's tracebacks and assertions), the sanitizers and valgrind, make, and the
# operating system's own errors (ENOSPC and the like).
ERROR_LINE = re.compile(
    r"(^|\s)(error(\[E\d+\])?:|fatal error|FAILED|FAIL\b|panicked at|Traceback|\w*Error:|"
    r"AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer|runtime error:|"
    r"ERROR SUMMARY: [1-9]|[1-9]\d* failed|No space left on device|"
    r"Segmentation fault|Aborted|\*\*\* \[)"
)
# A failed suite's log stays on the machine that ran it; its last lines go on the screen,
# which is all a CI page keeps.
TAIL_LINES = 8

# Lines that name the error words without being one.
NOT_AN_ERROR = re.compile(r"^\s*warning|\b0 failed\b|ERROR SUMMARY: 0 errors|-Werror")


def first_error(log_path):
    """The first line of the log that reports an error, else its last non-empty line."""
    last = ""
    with open(log_path, errors="replace") as log:
        for line in log:
            text = line.rstrip("\n")
            if text.strip():
                last = text
            if ERROR_LINE.search(text) and not NOT_AN_ERROR.search(text):
                return text.strip()
    return last.strip() or "(the suite printed nothing)"


def last_lines(log_path, count):
    """The log's last `count` non-empty lines: what a CI page shows when the log stays behind."""
    with open(log_path, errors="replace") as log:
        lines = [line.rstrip("\n") for line in log if line.strip()]
    return lines[-count:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--make", default="make")
    parser.add_argument("--logs", required=True)
    parser.add_argument("--stop", action="store_true", help="stop at the first failure")
    parser.add_argument("suites", nargs="+")
    args = parser.parse_args()
    os.makedirs(args.logs, exist_ok=True)
    total = len(args.suites)
    width = max(len(s) for s in args.suites)
    passed, failed = [], []
    started = time.monotonic()
    for i, suite in enumerate(args.suites, 1):
        log_path = os.path.join(args.logs, suite + ".log")
        print("[%d/%d] %-*s ... " % (i, total, width, suite), end="", flush=True)
        t0 = time.monotonic()
        with open(log_path, "w") as log:
            code = subprocess.call(args.make.split() + ["--no-print-directory", suite],
                                   stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        elapsed = time.monotonic() - t0
        if code == 0:
            passed.append(suite)
            print("passed in %.1f s" % elapsed, flush=True)
            continue
        failed.append(suite)
        print("FAILED in %.1f s (exit %d)" % (elapsed, code), flush=True)
        print("    first error: %s" % first_error(log_path))
        print("    log: %s" % log_path)
        tail = last_lines(log_path, TAIL_LINES)
        print("    its last %d lines:" % len(tail))
        for text in tail:
            print("    | %s" % text)
        sys.stdout.flush()
        if args.stop:
            break
    not_run = total - len(passed) - len(failed)
    # The tally alone on its line ("N passed, N failed[, N skipped]"), the form CI reads;
    # suites not run after --stop count as skipped. The time on a line of its own.
    print("suites: %d passed, %d failed%s"
          % (len(passed), len(failed), ", %d skipped" % not_run if not_run else ""))
    print("time: %d suites in %.0f s" % (total, time.monotonic() - started))
    if failed:
        print("failed: %s (logs in %s)" % (" ".join(failed), args.logs))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
