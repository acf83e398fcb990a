#!/usr/bin/env python3
"""The library loads where no RAIDA server is: dlopen(RTLD_NOW) in a plain Python process.

The .so references the server's symbols (config, get_page_by_sn_lock, unlock_page,
update_free_pages_bitmap, get_mfs, debug, warning, error) weakly; with any of them as a
plain undefined symbol, RTLD_NOW (and, as Rust links with -z now, any dlopen) would fail
here. Called without a server, a handler must answer ERROR_INTERNAL (252), leave every
other conn_info_t field alone, produce no output, and say why (stderr, when
RAIDA_HEALING_LOG allows it).

Usage: test_dlopen.py path/to/libraida_healing.so   (ends with "N passed, M failed")
The checks run in a child process (a fresh one, with no server symbol); the test (unittest,
through the one test runner, tools/tests/tally.py) checks what the child reports.
"""
import ctypes
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "node"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "tests"))
import raida_wire as rw  # noqa: E402  (the Python test kit)
import tally  # noqa: E402  (the one test runner)

CONN_INFO_SIZE = 336
OFF_BODY_SIZE, OFF_BODY, OFF_ENCRYPTION_TYPE = 16, 24, 48
OFF_OUTPUT_SIZE, OFF_OUTPUT, OFF_STATUS = 164, 168, 176
OFF_SA, OFF_SK, OFF_IP = 0, 8, 219
WRITTEN = set(range(OFF_OUTPUT_SIZE, OFF_OUTPUT_SIZE + 4)) | set(range(OFF_OUTPUT, OFF_OUTPUT + 8)) | {OFF_STATUS}
ERROR_INTERNAL = 252
HOST_SYMBOLS = ["config", "get_page_by_sn_lock", "unlock_page", "update_free_pages_bitmap", "get_mfs"]

check = rw.check
LIB_PATH = None


def conn_info(body, encryption_type=0):
    """A conn_info_t full of 0xA5 garbage except the fields the server sets; the client's
    address (sa, sk, ip: validate_ticket reads them) is left unsaid: NULL, -1, ""."""
    ci = ctypes.create_string_buffer(b"\xa5" * CONN_INFO_SIZE, CONN_INFO_SIZE)
    ctypes.memset(ctypes.byref(ci, OFF_SA), 0, 8)
    ctypes.memmove(ctypes.byref(ci, OFF_SK), ctypes.byref(ctypes.c_int(-1)), 4)
    ctypes.memset(ctypes.byref(ci, OFF_IP), 0, 1)
    ctypes.memmove(ctypes.byref(ci, OFF_BODY_SIZE), ctypes.byref(ctypes.c_int(len(body))), 4)
    ctypes.memmove(ctypes.byref(ci, OFF_BODY), ctypes.byref(ctypes.c_void_p(ctypes.addressof(body))), 8)
    ctypes.memmove(ctypes.byref(ci, OFF_ENCRYPTION_TYPE), ctypes.byref(ctypes.c_int(encryption_type)), 4)
    ctypes.memset(ctypes.byref(ci, OFF_OUTPUT_SIZE), 0, 4)
    ctypes.memset(ctypes.byref(ci, OFF_OUTPUT), 0, 8)
    return ci


def child(path):
    """Runs in a fresh process: loads the library and calls the handlers."""
    for name in HOST_SYMBOLS:
        check(not hasattr(ctypes.CDLL(None), name), f"this process must not define {name}")
    lib = ctypes.CDLL(path, mode=os.RTLD_NOW)
    # find with one well-formed coin record (legacy framing: challenge, 37 bytes, 3E 3E).
    body = ctypes.create_string_buffer(bytes(16) + rw.find_payload([(1, 1, bytes(16), bytes(16))])
                                       + rw.TRAILER)
    for name in rw.HANDLERS:
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = [ctypes.c_void_p], None
        ci = conn_info(body)
        before = ci.raw
        fn(ctypes.addressof(ci))
        after = ci.raw
        check(after[OFF_STATUS] == ERROR_INTERNAL, f"{name}: status {after[OFF_STATUS]}, want 252")
        check(after[OFF_OUTPUT_SIZE:OFF_OUTPUT_SIZE + 4] == bytes(4), f"{name}: output_size not 0")
        check(after[OFF_OUTPUT:OFF_OUTPUT + 8] == bytes(8), f"{name}: output not NULL")
        changed = [i for i in range(CONN_INFO_SIZE) if i not in WRITTEN and before[i] != after[i]]
        check(not changed, f"{name}: changed conn_info_t bytes {changed[:8]}")
        fn(None)  # a NULL ci is ignored (a crash here fails the child)
    return 0


def loads_without_a_server_and_every_handler_answers_252():
    env = dict(os.environ, RAIDA_HEALING_LOG="error")
    run = subprocess.run([sys.executable, __file__, "--child", LIB_PATH], env=env,
                         capture_output=True, text=True, timeout=60)
    check(run.returncode == 0, f"the child exited {run.returncode}:\n{run.stderr}")
    check("no RAIDA server in this process" in run.stderr,
          "the 252 is explained on stderr (RAIDA_HEALING_LOG=error)")


def main():
    global LIB_PATH
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        return child(sys.argv[2])
    LIB_PATH = os.path.abspath(sys.argv[1])
    return tally.run_functions([loads_without_a_server_and_every_handler_answers_252],
                               "dlopen test")


if __name__ == "__main__":
    sys.exit(main())
