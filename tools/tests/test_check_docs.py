#!/usr/bin/env python3
"""tools/check_docs.py's settings check fails where it must (part of `make check-docs`).

Against the repository's own README.md and src/settings.rs, changed in memory:
- as committed: no problem;
- a row of src/settings.rs missing from README: fails, naming the variable;
- a README row whose default or effect differs: fails, printing the row it should be;
- a new row in src/settings.rs (a setting added without its doc line): fails;
- a README row the table does not have: fails;
- the ops tool's RAIDA_HEALING_LIB row missing, or the tool no longer reading it: fails.
One unittest test method per behaviour. Ends with "N passed, M failed".
"""

import os
import sys
import unittest

import tally

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import check_docs  # noqa: E402

with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
    README = f.read()
with open(os.path.join(ROOT, "src", "settings.rs"), encoding="utf-8") as f:
    SETTINGS = f.read()
TOOL = {"tools/raida_healing.py": "os.environ.get('RAIDA_HEALING_LIB')"}

NEW_ROW = '''    report_interval: Duration = "RAIDA_HEALING_REPORT_INTERVAL_MS",
        Values::Millis { min: 1000, max: 3_600_000 }, default "15000",
        "how often a report is written";
}'''


def problems(readme=README, source=SETTINGS, tool=None):
    found = []
    check_docs.check_settings_table(found, readme, source, TOOL if tool is None else tool)
    return found


def readme_line(name):
    return next(line for line in README.splitlines() if line.startswith("| `%s`" % name))


class SettingsTable(unittest.TestCase):
    def test_the_committed_readme_matches(self):
        self.assertEqual(problems(), [])
        self.assertGreaterEqual(len(check_docs.library_settings(SETTINGS)), 10)

    def test_a_missing_row_fails(self):
        readme = README.replace(readme_line("RAIDA_HEALING_EJECT_MAX_MS") + "\n", "")
        self.assertEqual(problems(readme), [
            "README.md: the settings table lacks RAIDA_HEALING_EJECT_MAX_MS (src/settings.rs)"])

    def test_a_differing_row_fails_and_shows_the_right_one(self):
        right = readme_line("RAIDA_HEALING_HEDGE_MS")
        readme = README.replace(right, right.replace("| 300 |", "| 250 |"))
        self.assertEqual(problems(readme), [
            "README.md: the settings row of RAIDA_HEALING_HEDGE_MS differs from "
            "src/settings.rs; it should read\n  " + right])

    def test_a_setting_added_without_its_doc_line_fails(self):
        source = SETTINGS.replace("\n}\n\n/// The value of `setting`",
                                  "\n" + NEW_ROW + "\n\n/// The value of `setting`", 1)
        self.assertNotEqual(source, SETTINGS)
        self.assertEqual(problems(source=source), [
            "README.md: the settings table lacks RAIDA_HEALING_REPORT_INTERVAL_MS "
            "(src/settings.rs)"])

    def test_a_path_row_renders_unset_and_its_description(self):
        row = ('    key_file: Option<PathBuf> = "RAIDA_HEALING_KEY_FILE",\n'
               '        Values::Text("a path"), default "",\n'
               '        "the key";\n}')
        source = SETTINGS.replace("\n}\n\n/// The value of `setting`",
                                  "\n" + row + "\n\n/// The value of `setting`", 1)
        self.assertIn(("RAIDA_HEALING_KEY_FILE",
                       "| `RAIDA_HEALING_KEY_FILE` | a path | unset | the key |"),
                      check_docs.library_settings(source))

    def test_a_row_the_table_does_not_have_fails(self):
        extra = "| `RAIDA_HEALING_SPEED` | 1 - 9 | 5 | how fast |"
        readme = README.replace(readme_line("RAIDA_HEALING_LIB"),
                                extra + "\n" + readme_line("RAIDA_HEALING_LIB"))
        self.assertEqual(problems(readme), [
            "README.md: the settings table lists RAIDA_HEALING_SPEED, which src/settings.rs "
            "does not"])

    def test_the_tool_row_must_be_there_and_read(self):
        readme = README.replace(readme_line("RAIDA_HEALING_LIB") + "\n", "")
        self.assertEqual(problems(readme), [
            "README.md: the settings table lacks RAIDA_HEALING_LIB (read by "
            "tools/raida_healing.py)"])
        self.assertEqual(problems(tool={"tools/raida_healing.py": "import os"}), [
            "tools/raida_healing.py: does not read RAIDA_HEALING_LIB, which README.md "
            "documents"])


if __name__ == "__main__":
    sys.exit(tally.run(sys.argv))
