#!/usr/bin/env python3
"""tools/run_suites.py, the runner of `make test` (part of `make standalone-test`).

Runs it on a throw-away Makefile of three suites (one passes, one fails after a page of
assembler warnings with the real cause, ENOSPC, in the middle, one passes) and checks
the screen: `[i/N] NAME ... passed in T s` lines, the failing suite's first error line
(not a warning), log path and the log's last lines, every suite run, the tally, exit 1; with --stop, the run
ends at the failure and the tally says how many were not run. One unittest test method
per behaviour; ends with "N passed, M failed" and exits non-zero on any failure.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import tally

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


def screen(p):
    """A failure message: what the runner printed."""
    return "exit %d, output:\n%s%s" % (p.returncode, p.stdout, p.stderr)


class RunSuitesTest(unittest.TestCase):
    """The three runs, made once: every suite (one failing), --stop, and all passing."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="run_suites.")
        cls.addClassCleanup(shutil.rmtree, cls.tmp)
        with open(os.path.join(cls.tmp, "suites.mk"), "w") as f:
            f.write(MAKEFILE)
        cls.failing = run(["good", "noisy", "last"], cls.tmp)
        cls.stopped = run(["--stop", "noisy", "last"], cls.tmp)
        cls.passing = run(["good", "last"], cls.tmp)

    def line(self, i):
        """Line i (from 0) of the failing run's screen."""
        lines = self.failing.stdout.splitlines()
        self.assertGreater(len(lines), i, screen(self.failing))
        return lines[i]

    def assertFullMatch(self, pattern, text):
        self.assertTrue(re.fullmatch(pattern, text),
                        "%r does not match %r\n%s" % (text, pattern, screen(self.failing)))

    # ---- every suite run, one failing ----

    def test_exit_1_on_a_failure(self):
        self.assertEqual(self.failing.returncode, 1, screen(self.failing))

    def test_line_1(self):
        self.assertFullMatch(r"\[1/3\] good  \.\.\. passed in \d+\.\d s", self.line(0))

    def test_line_2(self):
        self.assertFullMatch(r"\[2/3\] noisy \.\.\. FAILED in \d+\.\d s \(exit 2\)", self.line(1))

    def test_the_first_real_error_not_a_warning(self):
        self.assertEqual(self.line(2), "    first error: cc1: fatal error: cannot write build/x.o: "
                                       "No space left on device", screen(self.failing))

    def test_the_logs_path(self):
        self.assertEqual(self.line(3), "    log: logs/noisy.log", screen(self.failing))

    def test_the_logs_last_lines(self):
        # 9 lines in the log: the last 8, the first of them the second warning, make's last
        # (make[N] when the test itself runs under make).
        self.assertEqual(self.line(4), "    its last 8 lines:", screen(self.failing))
        self.assertEqual(self.line(5), "    | /tmp/x.s:2: Warning: ignoring changed section "
                                       "attributes", screen(self.failing))
        self.assertEqual(self.line(11), "    | later: error: a consequence", screen(self.failing))
        self.assertFullMatch(r"    \| make(\[\d+\])?: \*\*\* \[suites\.mk:\d+: noisy\] Error 2", self.line(12))

    def test_the_rest_still_runs(self):
        self.assertFullMatch(r"\[3/3\] last  \.\.\. passed in \d+\.\d s", self.line(13))

    def test_the_tally_alone_on_its_line(self):
        self.assertEqual(self.line(14), "suites: 2 passed, 1 failed", screen(self.failing))

    def test_the_time(self):
        self.assertFullMatch(r"time: 3 suites in \d+ s", self.line(15))

    def test_which_failed(self):
        self.assertEqual(self.line(16), "failed: noisy (logs in logs)", screen(self.failing))

    def test_the_whole_output_is_in_the_log(self):
        with open(os.path.join(self.tmp, "logs", "noisy.log")) as f:
            self.assertEqual(f.read().count("Warning:"), 5)

    # ---- --stop ----

    def test_stop_ends_at_the_failure(self):
        self.assertEqual(self.stopped.returncode, 1, screen(self.stopped))
        self.assertNotIn("[2/2]", self.stopped.stdout, screen(self.stopped))

    def test_stops_tally(self):
        self.assertRegex(self.stopped.stdout,
                         re.compile(r"^suites: 0 passed, 1 failed, 1 skipped$", re.MULTILINE))

    # ---- all passing ----

    def test_all_passed_exit_0(self):
        self.assertEqual(self.passing.returncode, 0, screen(self.passing))
        self.assertIn("\nsuites: 2 passed, 0 failed\n", self.passing.stdout, screen(self.passing))


def main():
    return tally.run(sys.argv)


if __name__ == "__main__":
    sys.exit(main())
