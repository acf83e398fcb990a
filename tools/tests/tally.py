"""The one Python test runner of the repository: every Python test program ends through
it (tools/tests/test_*.py with unittest classes, through `run`; the node, WAN and dlopen
tests of c_tests/ with plain test functions, through `run_functions`). It prints
unittest's report on stdout, then "N passed, M failed" (the line `make test` and CI
read), and returns an exit status that is non-zero on any failure or when no test ran. A
test that exits (a SIGTERM handler's `sys.exit(143)`) stops the run and exits alike.
"""

import sys
import time
import unittest


class _StopOnExit(unittest.TextTestResult):
    """A result that stops the run when a test raises SystemExit: unittest would record it
    as one more error and go on."""

    exit = None

    def addError(self, test, err):
        if issubclass(err[0], SystemExit):
            self.exit = err[1]
            self.stop()
        super().addError(test, err)


class _FunctionTest(unittest.FunctionTestCase):
    """A test function as a unittest case, named by the function."""

    def __str__(self):
        return self._testFunc.__name__

    def shortDescription(self):
        return None


def _runner():
    return unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=_StopOnExit)


def _tally(result):
    """Prints "N passed, M failed" for `result`; the exit status."""
    if result.exit is not None:
        raise result.exit
    problems = result.failures + result.errors + result.skipped
    failed = len(problems)
    # A setUpClass error is reported by a stand-in, not by a test that ran.
    passed = result.testsRun - sum(isinstance(t, unittest.TestCase) for t, _ in problems)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and result.testsRun > 0 else 1


def run(argv):
    """Runs the tests of the program's __main__ module with unittest's command line `argv`
    (argv[0] the program) and returns the exit status."""
    result = unittest.main(module="__main__", argv=argv, testRunner=_runner(), exit=False).result
    return _tally(result)


def run_functions(tests, label, name_filter=""):
    """Runs each test function of `tests` whose name contains `name_filter` as a unittest
    case (a failing one is reported and the others still run); prints how long `label`
    took and the tally; returns the exit status (1 when anything failed or nothing ran)."""
    suite = unittest.TestSuite(_FunctionTest(fn) for fn in tests if name_filter in fn.__name__)
    started = time.monotonic()
    result = _runner().run(suite)
    if result.exit is None:
        print("%s: %.1f s" % (label, time.monotonic() - started))
    return _tally(result)
