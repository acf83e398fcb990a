#!/usr/bin/env python3
"""A second process for test_standalone.py: opens a server folder through the library and
reports on stdout, one JSON value per line, flushed at once.

    standalone_child.py LIB DIR hold
        Try raida_healing_open(DIR); print [code, last_error]; if it opened, wait for
        stdin to close, then close the folder.
    standalone_child.py LIB DIR fix-loop SPEC_JSON
        Open DIR; for each fix of SPEC_JSON ({"coin_id": n, "fixes": [{"coins": [[den, sn]],
        "pg": hex, "tickets": [25 ints]}]}) print [index, status, output hex] after it
        answers; then print "done" and wait to be killed.
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import raida_healing  # noqa: E402


def say(value):
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def main():
    lib_path, folder, mode = sys.argv[1:4]
    lib = raida_healing.Library(lib_path)
    if mode == "hold":
        code = lib._lib.raida_healing_open(os.fsencode(folder))
        say([code, lib.last_error()])
        if code == 0:
            sys.stdin.read()
            lib.close()
        return 0
    if mode == "fix-loop":
        spec = json.loads(sys.argv[4])
        lib.open(folder)
        for index, fix in enumerate(spec["fixes"]):
            status, output = lib.fix([tuple(c) for c in fix["coins"]], bytes.fromhex(fix["pg"]),
                                     fix["tickets"], coin_id=spec["coin_id"])
            say([index, status, output.hex()])
        say("done")
        sys.stdin.read()
        return 0
    raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    sys.exit(main())
