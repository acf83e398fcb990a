#!/usr/bin/env python3
"""raida_healing.py: drive libraida_healing from an ops script (Python standard library only).

As a module: `Library(path)` loads the library with RTLD_NOW and wraps its C interface
(the conn_info_t layout, the four cmd_* handlers, and the standalone exports that open a
server folder where no server runs). As a command:

    raida_healing.py check LIB
        Load LIB, print its version and sizeof(conn_info_t), list any missing export;
        exit 1 when the size is not 336 or an export is missing (2 if it does not load).

    raida_healing.py find DIR --lib LIB [--] COIN...
        Open the server folder DIR (config.toml + Data/) read-only and print, for each
        coin, the AN and MFS byte the store holds. COIN is DEN:SN (denomination -8..6,
        serial number, decimal) or DEN:SN:AN (AN as 32 hex digits), in which case the
        library's own find command (60) says whether the store holds that AN.
        Put `--` before the coins when one starts with a negative denomination.
        Exit 0 when every coin's page exists and every given AN matches, 1 otherwise,
        2 when the library or folder cannot be opened.

The folder is locked while the tool runs (Data/.raida_healing.lock), so it refuses a
folder another ops script has open. Log lines go to stderr when RAIDA_HEALING_LOG is set
(error, warning or debug).
"""

import argparse
import ctypes
import os
import struct
import sys
import zlib

# ---- The C layouts (legacy-abi.md) ----

CONN_INFO_SIZE = 336


class Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class ConnInfo(ctypes.Structure):
    """conn_info_t: 336 bytes, align 8. Handlers read body, body_size, encryption_type and
    coin_id; they write output (from malloc), output_size and command_status."""

    _fields_ = [
        ("sa", ctypes.c_void_p),
        ("sk", ctypes.c_int),
        ("e0", ctypes.c_uint8),
        ("e1", ctypes.c_uint8),
        ("body_size", ctypes.c_int),
        ("body", ctypes.c_void_p),
        ("encryption_denomination", ctypes.c_int8),
        ("encryption_sn", ctypes.c_uint32),
        ("encryption_denomination2", ctypes.c_int8),
        ("encryption_sn2", ctypes.c_uint32),
        ("encryption_type", ctypes.c_int),
        ("encryption_an", ctypes.c_uint8 * 16),
        ("encryption_an_256", ctypes.c_uint8 * 32),
        ("nonce", ctypes.c_uint8 * 16),
        ("request_nonce", ctypes.c_uint8 * 24),
        ("response_nonce", ctypes.c_uint8 * 24),
        ("output_size", ctypes.c_int),
        ("output", ctypes.c_void_p),
        ("command_status", ctypes.c_uint8),
        ("challenge_hash", ctypes.c_uint8 * 16),
        ("start_time", Timeval),
        ("cgroup", ctypes.c_uint8),
        ("command", ctypes.c_uint8),
        ("shard_id", ctypes.c_uint8),
        ("ip", ctypes.c_char * 16),
        ("exec_time", ctypes.c_ulong),
        ("coin_id", ctypes.c_uint8),
        ("state", ctypes.c_int),
        ("read_buf", ctypes.c_uint8 * 48),
        ("bytes_to_read", ctypes.c_int),
        ("bytes_read", ctypes.c_int),
        ("write_buf", ctypes.c_void_p),
        ("bytes_to_write", ctypes.c_int),
        ("bytes_written", ctypes.c_int),
        ("is_udp_pooled", ctypes.c_int),
    ]


# Every offset of legacy-abi.md, checked at import so a wrong field list cannot go unseen.
CONN_INFO_OFFSETS = {
    "sa": 0, "sk": 8, "e0": 12, "e1": 13, "body_size": 16, "body": 24,
    "encryption_denomination": 32, "encryption_sn": 36, "encryption_denomination2": 40,
    "encryption_sn2": 44, "encryption_type": 48, "encryption_an": 52,
    "encryption_an_256": 68, "nonce": 100, "request_nonce": 116, "response_nonce": 140,
    "output_size": 164, "output": 168, "command_status": 176, "challenge_hash": 177,
    "start_time": 200, "cgroup": 216, "command": 217, "shard_id": 218, "ip": 219,
    "exec_time": 240, "coin_id": 248, "state": 252, "read_buf": 256, "bytes_to_read": 304,
    "bytes_read": 308, "write_buf": 312, "bytes_to_write": 320, "bytes_written": 324,
    "is_udp_pooled": 328,
}


def _check_layout():
    if ctypes.sizeof(ConnInfo) != CONN_INFO_SIZE or ctypes.alignment(ConnInfo) != 8:
        raise ImportError("conn_info_t mirror is %d bytes, align %d; expected 336, 8"
                          % (ctypes.sizeof(ConnInfo), ctypes.alignment(ConnInfo)))
    for name, offset in CONN_INFO_OFFSETS.items():
        if getattr(ConnInfo, name).offset != offset:
            raise ImportError("conn_info_t.%s at %d, expected %d"
                              % (name, getattr(ConnInfo, name).offset, offset))


_check_layout()

# ---- Return codes of the standalone exports (include/raida_healing.h) ----

OK = 0
E_ARGUMENT = -1
E_SERVER_PRESENT = -2
E_ALREADY_OPEN = -3
E_CONFIG = -4
E_DATA = -5
E_LOCKED = -6
E_NOT_OPEN = -7
E_NO_PAGE = -8
E_INTERNAL = -9

CODE_NAMES = {
    E_ARGUMENT: "RAIDA_HEALING_E_ARGUMENT",
    E_SERVER_PRESENT: "RAIDA_HEALING_E_SERVER_PRESENT",
    E_ALREADY_OPEN: "RAIDA_HEALING_E_ALREADY_OPEN",
    E_CONFIG: "RAIDA_HEALING_E_CONFIG",
    E_DATA: "RAIDA_HEALING_E_DATA",
    E_LOCKED: "RAIDA_HEALING_E_LOCKED",
    E_NOT_OPEN: "RAIDA_HEALING_E_NOT_OPEN",
    E_NO_PAGE: "RAIDA_HEALING_E_NO_PAGE",
    E_INTERNAL: "RAIDA_HEALING_E_INTERNAL",
}

# ---- Healing commands and statuses (wire-protocol.md) ----

GET_TICKET, VALIDATE_TICKET, FIND, FIX = 40, 50, 60, 80
HANDLERS = {GET_TICKET: "cmd_get_ticket", VALIDATE_TICKET: "cmd_validate_ticket",
            FIND: "cmd_find", FIX: "cmd_fix"}

STATUS_NAMES = {
    16: "INVALID_PACKET_LENGTH", 18: "WRONG_RAIDA", 36: "EMPTY_REQUEST", 39: "COINS_NOT_DIV",
    40: "INVALID_SN_OR_DENOMINATION", 42: "NO_TICKET_SLOT", 43: "NO_TICKET_FOUND",
    44: "TICKET_CLAIMED_ALREADY", 208: "FIND_NEITHER", 209: "FIND_ALL_AN",
    210: "FIND_ALL_PAN", 211: "FIND_MIXED", 241: "ALL_PASS", 242: "ALL_FAIL", 243: "MIXED",
    250: "SUCCESS", 252: "INTERNAL", 254: "MEMORY_ALLOC",
}

TOTAL_RAIDA_SERVERS = 25
TRAILER = b"\x3e\x3e"

# Every symbol a server or script may call; `check` insists on all of them.
REQUIRED_EXPORTS = (
    "cmd_get_ticket", "cmd_validate_ticket", "cmd_find", "cmd_fix",
    "send_validate_ticket_job", "raida_healing_version", "raida_healing_conn_info_size",
    "raida_healing_open", "raida_healing_last_error", "raida_healing_close",
    "raida_healing_read_record",
)


class RaidaError(Exception):
    """A standalone export returned a negative code; `code` is it, the text is last_error."""

    def __init__(self, code, message):
        super().__init__("%s (%d): %s" % (CODE_NAMES.get(code, "error"), code, message))
        self.code = code
        self.message = message


def frame(payload, encryption_type=0, challenge=None):
    """The request body a server hands a handler: for types 0-2 a 16-byte challenge (12
    bytes and their CRC-32, big-endian), the payload, `3E 3E`; for types 4 and 5 the
    payload, a 32-byte HMAC (already checked by the server, so zeros here), `3E 3E`."""
    if encryption_type >= 4:
        return bytes(payload) + bytes(32) + TRAILER
    challenge = os.urandom(12) if challenge is None else bytes(challenge)
    return challenge + struct.pack(">I", zlib.crc32(challenge)) + bytes(payload) + TRAILER


def coin_bytes(den, sn):
    """A coin record on the wire: denomination (signed byte), serial number (big-endian)."""
    return struct.pack(">bI", den, sn)


class Library:
    """libraida_healing loaded into this process (which has no RAIDA server)."""

    def __init__(self, path):
        self.path = path
        # RTLD_NOW: every undefined symbol must resolve now, as in a deployment check.
        self._lib = ctypes.CDLL(path, mode=os.RTLD_NOW)
        self._libc = ctypes.CDLL(None)
        self._libc.free.argtypes = [ctypes.c_void_p]
        self._libc.free.restype = None
        self.missing = [name for name in REQUIRED_EXPORTS if not hasattr(self._lib, name)]
        lib = self._lib
        for name in HANDLERS.values():
            if hasattr(lib, name):
                fn = getattr(lib, name)
                fn.argtypes = [ctypes.POINTER(ConnInfo)]
                fn.restype = None
        prototypes = {
            "raida_healing_version": ([], ctypes.c_char_p),
            "raida_healing_conn_info_size": ([], ctypes.c_size_t),
            "raida_healing_open": ([ctypes.c_char_p], ctypes.c_int),
            "raida_healing_last_error": ([], ctypes.c_char_p),
            "raida_healing_close": ([], None),
            "raida_healing_read_record": (
                [ctypes.c_int8, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint8 * 16),
                 ctypes.POINTER(ctypes.c_uint8)], ctypes.c_int),
        }
        for name, (args, res) in prototypes.items():
            if hasattr(lib, name):
                fn = getattr(lib, name)
                fn.argtypes = args
                fn.restype = res

    def version(self):
        return self._lib.raida_healing_version().decode()

    def conn_info_size(self):
        return self._lib.raida_healing_conn_info_size()

    def last_error(self):
        return self._lib.raida_healing_last_error().decode(errors="replace")

    def open(self, folder):
        """Makes `folder` this process's store; raises RaidaError on a negative code."""
        code = self._lib.raida_healing_open(os.fsencode(folder))
        if code != OK:
            raise RaidaError(code, self.last_error())

    def close(self):
        self._lib.raida_healing_close()

    def read_record(self, den, sn):
        """(AN bytes, MFS byte) of a coin in the open folder; raises RaidaError."""
        an = (ctypes.c_uint8 * 16)()
        mfs = ctypes.c_uint8()
        code = self._lib.raida_healing_read_record(den, sn, ctypes.byref(an), ctypes.byref(mfs))
        if code != OK:
            raise RaidaError(code, self.last_error())
        return bytes(an), mfs.value

    def call(self, command, body, encryption_type=0, coin_id=0):
        """Runs handler `command` (40, 50, 60, 80) on `body` (None: no body) as a server
        would; returns (status, output bytes). The output buffer is freed here."""
        ci = ConnInfo()
        ci.encryption_type = encryption_type
        ci.coin_id = coin_id
        keep = None
        if body is not None:
            keep = ctypes.create_string_buffer(bytes(body), max(len(body), 1))
            ci.body = ctypes.cast(keep, ctypes.c_void_p)
            ci.body_size = len(body)
        getattr(self._lib, HANDLERS[command])(ctypes.byref(ci))
        output = b""
        if ci.output:
            output = ctypes.string_at(ci.output, ci.output_size)
            self._libc.free(ci.output)
        del keep
        return ci.command_status, output

    def get_ticket(self, coins, encryption_type=0):
        """coins: (den, sn, AN bytes) each."""
        payload = b"".join(coin_bytes(d, s) + bytes(an) for d, s, an in coins)
        return self.call(GET_TICKET, frame(payload, encryption_type), encryption_type)

    def validate_ticket(self, claimer, ticket, encryption_type=0):
        payload = struct.pack(">BI", claimer, ticket)
        return self.call(VALIDATE_TICKET, frame(payload, encryption_type), encryption_type)

    def find(self, coins, encryption_type=0):
        """coins: (den, sn, AN bytes, PAN bytes) each."""
        payload = b"".join(coin_bytes(d, s) + bytes(an) + bytes(pan) for d, s, an, pan in coins)
        return self.call(FIND, frame(payload, encryption_type), encryption_type)

    def fix(self, coins, pg, tickets, encryption_type=0, coin_id=0):
        """coins: (den, sn) each; pg: 16 bytes; tickets: 25 ticket ids (0 = none)."""
        if len(tickets) != TOTAL_RAIDA_SERVERS:
            raise ValueError("fix needs 25 ticket ids")
        payload = (b"".join(coin_bytes(d, s) for d, s in coins) + bytes(pg)
                   + b"".join(struct.pack(">I", t) for t in tickets))
        return self.call(FIX, frame(payload, encryption_type), encryption_type, coin_id)


# ---- Command line ----

def parse_coin(text):
    """DEN:SN or DEN:SN:AN -> (den, sn, AN bytes or None)."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError("%r: expected DEN:SN or DEN:SN:AN" % text)
    try:
        den, sn = int(parts[0]), int(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError("%r: DEN and SN are decimal integers" % text)
    if not -8 <= den <= 6:
        raise argparse.ArgumentTypeError("%r: denomination must be -8..6" % text)
    if not 0 <= sn < 1000 * 1024:
        raise argparse.ArgumentTypeError("%r: serial number must be 0..1023999" % text)
    an = None
    if len(parts) == 3:
        try:
            an = bytes.fromhex(parts[2])
        except ValueError:
            an = b""
        if len(an) != 16:
            raise argparse.ArgumentTypeError("%r: AN must be 32 hex digits" % text)
    return den, sn, an


def load_library(path):
    try:
        return Library(path)
    except OSError as e:
        print("cannot load %s: %s" % (path, e), file=sys.stderr)
        sys.exit(2)


def cmd_check(args):
    lib = load_library(args.lib)
    ok = True
    if "raida_healing_version" in lib.missing or "raida_healing_conn_info_size" in lib.missing:
        print("library: %s" % args.lib)
        print("version: unknown (no raida_healing_version: a build without standalone support)")
        ok = False
    else:
        size = lib.conn_info_size()
        print("library: %s" % args.lib)
        print("version: %s" % lib.version())
        print("conn_info_t: %d bytes (this tool and the legacy server: %d)" % (size, CONN_INFO_SIZE))
        if size != CONN_INFO_SIZE:
            print("MISMATCH: the library's conn_info_t is not the server's", file=sys.stderr)
            ok = False
    if lib.missing:
        print("MISSING exports: %s" % " ".join(lib.missing), file=sys.stderr)
        ok = False
    print("check: %s" % ("ok" if ok else "FAILED"))
    return 0 if ok else 1


def cmd_find(args):
    lib = load_library(args.lib)
    try:
        lib.open(args.dir)
    except RaidaError as e:
        print("cannot open %s: %s" % (args.dir, e), file=sys.stderr)
        return 2
    all_good = True
    try:
        for den, sn, given in args.coins:
            label = "%d:%d" % (den, sn)
            try:
                an, mfs = lib.read_record(den, sn)
            except RaidaError as e:
                if e.code != E_NO_PAGE:
                    raise
                print("%-14s no page (the server answers 40 for this coin)" % label)
                all_good = False
                continue
            line = "%-14s AN %s  MFS %3d (%s)" % (label, an.hex(), mfs, "used" if mfs else "free")
            if given is not None:
                status, _ = lib.find([(den, sn, given, given)])
                if status == 209:
                    line += "  given AN: matches (find 209)"
                elif status == 208:
                    line += "  given AN: DIFFERS (find 208)"
                    all_good = False
                else:
                    line += "  given AN: find answered %d %s" % (status, STATUS_NAMES.get(status, ""))
                    all_good = False
            print(line)
    finally:
        lib.close()
    return 0 if all_good else 1


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="raida_healing.py",
        description="Check a libraida_healing build, or look into a stopped RAIDA server's "
                    "data folder through it (Python standard library only).",
        epilog="Logging: set RAIDA_HEALING_LOG=error|warning|debug to see the library's "
               "lines on stderr (quiet by default).")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser(
        "check", help="load LIB with RTLD_NOW, print its version and conn_info_t size",
        description="Load LIB with RTLD_NOW (as a server would), print its version and "
                    "sizeof(conn_info_t); exit 1 when that size is not %d or a required "
                    "export is missing, 2 when it does not load." % CONN_INFO_SIZE)
    check.add_argument("lib", metavar="LIB", help="path to libraida_healing.so")
    check.set_defaults(run=cmd_check)
    find = sub.add_parser(
        "find", help="print which AN a server folder holds for each coin (read-only)",
        description="Open the server folder DIR (its config.toml and Data/) through the "
                    "library and print each coin's stored AN and MFS byte; with DEN:SN:AN "
                    "also run the find command to say whether that AN is the one held. "
                    "Changes no coin (it only creates Data/.raida_healing.lock, the folder "
                    "lock, so Data/ must be writable). Exit 0 when every coin's page exists and every given "
                    "AN matches, 1 otherwise, 2 when LIB or DIR cannot be opened.",
        epilog="COIN: DEN:SN or DEN:SN:AN, e.g. 1:5000 or "
               "1:5000:feebd91947b11a5441fe8c4916e9904a. Put -- before the coins when one "
               "has a negative denomination: find DIR --lib LIB -- -1:42")
    find.add_argument("dir", metavar="DIR", help="server folder (holds config.toml and Data/)")
    find.add_argument("--lib", required=True, metavar="LIB", help="path to libraida_healing.so")
    find.add_argument("coins", metavar="COIN", nargs="+", type=parse_coin,
                      help="DEN:SN or DEN:SN:AN")
    find.set_defaults(run=cmd_find)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
