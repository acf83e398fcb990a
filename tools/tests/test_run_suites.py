#!/usr/bin/env python3
"""tools/run_suites.py, the runner of `make test` (part of `make standalone-test`).

Runs it on a throw-away Makefile of three suites (one passes, one fails after a page of
assembler warnings with the real cause, ENOSPC, in the middle, one passes) and checks
the screen: `[i/N] NAME ... passed in T s` lines, the failing suite's first error line
(not a warning) and log path, every suite run, the tally, exit 1; with --stop, the run
ends at the failure and the tally says how many were not run.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

RUNNER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "run_suites.py")

MAKEFILE = """\
good:
\t@echo all fine
noisy:
\t@for i in 1 2 3 4 5; do echo "/tmp/x.s:$$i: Warning: ignoring changed section attributes"; done
\t@echo "warning: unused variable"
\t@echo "cc1: fatal error: cannot write build/x.o: No space left on device"
\t@echo "later: error: a consequence"
\t@exit 2
last:
\t@echo done
"""


def run(args, cwd):
    return subprocess.run([sys.executable, RUNNER, "--make", "make -f suites.mk",
                           "--logs", "logs"] + args, cwd=cwd, capture_output=True, text=True)


def main():
    tmp = tempfile.mkdtemp(prefix="run_suites.")
    try:
        with open(os.path.join(tmp, "suites.mk"), "w") as f:
            f.write(MAKEFILE)
        p = run(["good", "noisy", "last"], tmp)
        lines = p.stdout.splitlines()
        checks = [
            (p.returncode == 1, "exit 1 on a failure"),
            (re.fullmatch(r"\[1/3\] good  \.\.\. passed in \d+\.\d s", lines[0]), "line 1"),
            (re.fullmatch(r"\[2/3\] noisy \.\.\. FAILED in \d+\.\d s \(exit 2\)", lines[1]), "line 2"),
            (lines[2] == "    first error: cc1: fatal error: cannot write build/x.o: "
                         "No space left on device", "the first real error, not a warning"),
            (lines[3] == "    log: logs/noisy.log", "the log's path"),
            (re.fullmatch(r"\[3/3\] last  \.\.\. passed in \d+\.\d s", lines[4]), "the rest still runs"),
            (lines[5] == "suites: 2 passed, 1 failed", "the tally, alone on its line"),
            (re.fullmatch(r"time: 3 suites in \d+ s", lines[6]), "the time"),
            (lines[7] == "failed: noisy (logs in logs)", "which failed"),
            (open(os.path.join(tmp, "logs", "noisy.log")).read().count("Warning:") == 5,
             "the whole output is in the log"),
        ]
        p = run(["--stop", "noisy", "last"], tmp)
        checks += [
            (p.returncode == 1 and "[2/2]" not in p.stdout, "--stop ends at the failure"),
            (re.search(r"^suites: 0 passed, 1 failed, 1 skipped$", p.stdout, re.MULTILINE),
             "--stop's tally"),
        ]
        p = run(["good", "last"], tmp)
        checks.append((p.returncode == 0 and "\nsuites: 2 passed, 0 failed\n" in p.stdout,
                       "all passed: exit 0"))
        failed = [what for ok, what in checks if not ok]
        for what in failed:
            print("FAIL %s" % what)
        if failed:
            print(p.stdout)
            sys.exit(1)
        print("test_run_suites: %d passed, 0 failed" % len(checks))
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
