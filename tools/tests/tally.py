"""The one way the Python test programs of tools/tests end: unittest's report on stdout,
then "N passed, M failed" (the line `make test` and CI read), and an exit status that is
non-zero on any failure or when no test ran.
"""

import sys
import unittest


def run(argv):
    """Runs the tests of the program's __main__ module with unittest's command line `argv`
    (argv[0] the program) and returns the exit status."""
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2)
    result = unittest.main(module="__main__", argv=argv, testRunner=runner, exit=False).result
    problems = result.failures + result.errors + result.skipped
    failed = len(problems)
    # A setUpClass error is reported by a stand-in, not by a test that ran.
    passed = result.testsRun - sum(isinstance(t, unittest.TestCase) for t, _ in problems)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and result.testsRun > 0 else 1
