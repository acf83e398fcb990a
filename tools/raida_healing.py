#!/usr/bin/env python3
"""raida_healing: drive libraida_healing from an ops script (Python standard library only).

Installed by `make install` as PYTHONDIR/raida_healing.py (default
PREFIX/lib/raida-healing/python: `PYTHONPATH=... python3 -c 'import raida_healing'`); the
command BINDIR/raida-healing is a launcher of `main()` here. In the source tree it is
tools/raida_healing.py.

As a module: `Library(path)` loads the library with RTLD_NOW and wraps its C interface
(the conn_info_t layout, the four cmd_* handlers, the standalone exports that open a
server folder where no server runs, and the page check an audit uses). As a command
(installed by `make install` as BINDIR/raida-healing):

    raida-healing check [LIB]                 load the library, check its ABI and exports
    raida-healing read DIR DEN:SN...          each coin's stored AN and MFS byte
    raida-healing find DIR DEN:SN[:AN]...     the same, and whether the store holds AN
    raida-healing audit DIR                   check a stopped server's whole Data/ tree
    raida-healing keygen FILE                 write a new claim key file (never overwrites)
    raida-healing metrics FILE                a per-peer table from the library's metrics file

Every subcommand takes --json (one JSON object on stdout), --lib LIB and --version.
The library is found by --lib, else $RAIDA_HEALING_LIB, else the installed library (the
path `make install` wrote below), else the build tree (target/release next to tools/).
Exit codes: 0 success, 1 a negative answer or a failed check, 2 usage error, 3 the
library, folder or a file cannot be opened or read. A negative denomination needs no `--`.
`read`, `find` and `audit` only read: no lock file is created, nothing is written, and a
read-only copy works (`read --lock`/`find --lock` open the folder through the library's
store instead, taking its lock). Names from the folder are escaped in text output. Log
lines go to stderr when RAIDA_HEALING_LOG is set (error, warning or debug).
"""


import argparse
import ctypes
import errno
import fcntl
import hashlib
import hmac
import json
import os
import pwd
import re
import secrets
import stat
import struct
import sys
import time
import zlib

# The tool's version: the crate's (tools/tests checks they are equal).
TOOL_VERSION = "0.1.0"
# Every --json object carries this as "schema_version". Raised when a field is removed or
# changes meaning; a new field keeps it (docs/standalone.md, "JSON output").
JSON_SCHEMA_VERSION = 1
# The installed library's path; `make install` replaces this line in the installed copy.
INSTALLED_LIBRARY = None
# Where `make` puts the library when the tool runs from the source tree.
BUILD_TREE_LIBRARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                                  "target", "release", "libraida_healing.so")
LIBRARY_ENV = "RAIDA_HEALING_LIB"

# Exit codes.
EXIT_OK, EXIT_NEGATIVE, EXIT_USAGE, EXIT_CANNOT_OPEN = 0, 1, 2, 3

# ---- The C layouts (docs/abi.md, "conn_info_t") ----

CONN_INFO_SIZE = 336


class Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


# conn_info_t field by field: name, C type, offset (every offset of docs/abi.md, checked
# at import so a wrong field list cannot go unseen).
CONN_INFO_LAYOUT = (
    ("sa", ctypes.c_void_p, 0), ("sk", ctypes.c_int, 8), ("e0", ctypes.c_uint8, 12),
    ("e1", ctypes.c_uint8, 13), ("body_size", ctypes.c_int, 16), ("body", ctypes.c_void_p, 24),
    ("encryption_denomination", ctypes.c_int8, 32), ("encryption_sn", ctypes.c_uint32, 36),
    ("encryption_denomination2", ctypes.c_int8, 40), ("encryption_sn2", ctypes.c_uint32, 44),
    ("encryption_type", ctypes.c_int, 48), ("encryption_an", ctypes.c_uint8 * 16, 52),
    ("encryption_an_256", ctypes.c_uint8 * 32, 68), ("nonce", ctypes.c_uint8 * 16, 100),
    ("request_nonce", ctypes.c_uint8 * 24, 116), ("response_nonce", ctypes.c_uint8 * 24, 140),
    ("output_size", ctypes.c_int, 164), ("output", ctypes.c_void_p, 168),
    ("command_status", ctypes.c_uint8, 176), ("challenge_hash", ctypes.c_uint8 * 16, 177),
    ("start_time", Timeval, 200), ("cgroup", ctypes.c_uint8, 216),
    ("command", ctypes.c_uint8, 217), ("shard_id", ctypes.c_uint8, 218),
    ("ip", ctypes.c_char * 16, 219), ("exec_time", ctypes.c_ulong, 240),
    ("coin_id", ctypes.c_uint8, 248), ("state", ctypes.c_int, 252),
    ("read_buf", ctypes.c_uint8 * 48, 256), ("bytes_to_read", ctypes.c_int, 304),
    ("bytes_read", ctypes.c_int, 308), ("write_buf", ctypes.c_void_p, 312),
    ("bytes_to_write", ctypes.c_int, 320), ("bytes_written", ctypes.c_int, 324),
    ("is_udp_pooled", ctypes.c_int, 328),
)


class ConnInfo(ctypes.Structure):
    """conn_info_t: 336 bytes, align 8. Handlers read body, body_size, encryption_type and
    coin_id; they write output (from malloc), output_size and command_status."""

    _fields_ = [(name, c_type) for name, c_type, _ in CONN_INFO_LAYOUT]


def _check_layout():
    if ctypes.sizeof(ConnInfo) != CONN_INFO_SIZE or ctypes.alignment(ConnInfo) != 8:
        raise ImportError("conn_info_t mirror is %d bytes, align %d; expected 336, 8"
                          % (ctypes.sizeof(ConnInfo), ctypes.alignment(ConnInfo)))
    for name, _, offset in CONN_INFO_LAYOUT:
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

# ---- Healing commands and statuses (docs/wire-protocol.md, "Status codes"; the
# header's RAIDA_STATUS_* macros, which tools/tests checks this table against) ----

# The handlers by command byte: the header's RAIDA_HEALING_COMMANDS list (from the command
# table, src/commands/table.rs), restated because the tool runs where no header is
# installed; tools/tests checks it against the header.
GET_TICKET, VALIDATE_TICKET, FIND, FIX = 40, 50, 60, 80
HANDLERS = {GET_TICKET: "cmd_get_ticket", VALIDATE_TICKET: "cmd_validate_ticket",
            FIND: "cmd_find", FIX: "cmd_fix"}

STATUS_NAMES = {
    16: "INVALID_PACKET_LENGTH", 18: "WRONG_RAIDA", 36: "EMPTY_REQUEST", 39: "COINS_NOT_DIV",
    40: "INVALID_SN_OR_DENOMINATION", 42: "NO_TICKET_SLOT", 43: "NO_TICKET_FOUND",
    44: "TICKET_CLAIMED_ALREADY", 160: "REQUEST_RATE", 208: "FIND_NEITHER",
    209: "FIND_ALL_AN", 210: "FIND_ALL_PAN", 211: "FIND_MIXED", 241: "ALL_PASS", 242: "ALL_FAIL",
    243: "MIXED", 250: "SUCCESS", 252: "INTERNAL", 254: "MEMORY_ALLOC",
}

TOTAL_RAIDA_SERVERS = 25
TRAILER = b"\x3e\x3e"

# Every symbol a server or script may call; `check` insists on all of them.
REQUIRED_EXPORTS = tuple(HANDLERS.values()) + (
    "send_validate_ticket_job", "raida_healing_version", "raida_healing_conn_info_size",
    "raida_healing_open", "raida_healing_last_error", "raida_healing_close",
    "raida_healing_read_record", "raida_healing_config_parse", "raida_healing_page_count",
    "raida_healing_check_page",
)

# raida_healing_check_page's positive answers (RAIDA_HEALING_PAGE_* in the header): the
# library decides what is wrong with a page; the tool only names the number.
PAGE_PROBLEMS = {1: "missing", 2: "truncated", 3: "oversized", 4: "not_regular",
                 5: "symlink", 6: "unreadable"}


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
            "raida_healing_page_count": ([], ctypes.c_size_t),
            "raida_healing_check_page": (
                [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t,
                 ctypes.c_char_p, ctypes.c_size_t], ctypes.c_int),
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

    def page_count(self):
        """How many pages a full server folder has (15000)."""
        return self._lib.raida_healing_page_count()

    def check_page(self, folder, index):
        """(code, path relative to Data/, why) for page `index` of `folder`, as the store
        reads pages: code 0 valid, 1..6 a PAGE_PROBLEMS kind, negative when Data/ cannot
        be opened (E_DATA) or the index is out of range (E_ARGUMENT)."""
        path = ctypes.create_string_buffer(64)
        why = ctypes.create_string_buffer(512)
        code = self._lib.raida_healing_check_page(os.fsencode(folder), index, path, 64, why, 512)
        return code, os.fsdecode(path.value), why.value.decode(errors="replace")

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


# ---- Reading page files without the library's store (read-only mode) ----

RECORDS_PER_PAGE = 1024
RECORD_BYTES = 17
PAGE_BYTES = RECORDS_PER_PAGE * RECORD_BYTES
DENOMINATIONS = range(-8, 7)
PAGES_PER_DENOMINATION = 1000


def page_index(den, page):
    """The index raida_healing_check_page takes: denominations -8..6, 1000 pages each."""
    return (den - DENOMINATIONS[0]) * PAGES_PER_DENOMINATION + page


def page_of_index(index):
    """(den, page) of a page index."""
    return DENOMINATIONS[0] + index // PAGES_PER_DENOMINATION, index % PAGES_PER_DENOMINATION


def page_relative_path(den, page):
    """`<den byte>/<page >> 8>/<page>.bin` in lowercase hex (docs/abi.md, page files)."""
    return "%02x/%02x/%04x.bin" % (den & 0xFF, page >> 8, page)


class PageUnusable(Exception):
    """The page file of a coin cannot be used; the text says why (the library's words)."""


def read_page_read_only(lib, folder, den, page):
    """The page's bytes, read as the library's store reads pages (no link below Data/
    followed, no FIFO or device opened, exactly PAGE_BYTES) but without its store: no
    lock, nothing created or written. Raises CannotOpen when Data/ cannot be opened and
    PageUnusable (with the library's own reason, raida_healing_check_page) for a page it
    would not use."""
    data = os.path.join(folder, "Data")
    try:
        data_fd = os.open(data, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise CannotOpen("cannot open %s: %s" % (data, e.strerror))
    fds = [data_fd]
    try:
        parts = page_relative_path(den, page).split("/")
        try:
            for name in parts[:-1]:
                fds.append(os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                                   | os.O_CLOEXEC, dir_fd=fds[-1]))
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
                         | os.O_NOCTTY, dir_fd=fds[-1])
            fds.append(fd)
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and st.st_size == PAGE_BYTES:
                chunks, left = [], PAGE_BYTES + 1  # one byte more shows a file that grew
                while left:
                    chunk = os.read(fd, left)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    left -= len(chunk)
                content = b"".join(chunks)
                if len(content) == PAGE_BYTES:
                    return content
        except OSError:
            pass
    finally:
        for fd in reversed(fds):
            os.close(fd)
    code, path, why = lib.check_page(folder, page_index(den, page))
    if code == OK:
        why = "the page file changed while it was read; run the command again"
    raise PageUnusable(why)


def escaped(text):
    """`text` with every character that is not printable (control characters, escape bytes,
    line breaks, bytes that are not UTF-8) and the backslash written as an escape, so a name
    taken from the folder can neither forge a line of the report nor drive the terminal."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif 0xDC80 <= code <= 0xDCFF:  # a byte os.fsdecode could not decode
            out.append("\\x%02x" % (code - 0xDC00))
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x100:
            out.append("\\x%02x" % code)
        else:
            out.append("\\u%04x" % code if code < 0x10000 else "\\U%08x" % code)
    return "".join(out)


# ---- Command line ----

class CannotOpen(Exception):
    """The library, the folder or a file cannot be opened or read: exit 3."""


# A coin argument: DEN:SN or DEN:SN:AN; a leading minus is a denomination, not an option.
COIN_ARGUMENT = re.compile(r"^-\d+:")


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


def parse_plain_coin(text):
    """DEN:SN only (read)."""
    den, sn, an = parse_coin(text)
    if an is not None:
        raise argparse.ArgumentTypeError("%r: read takes DEN:SN (find checks an AN)" % text)
    return den, sn, None


def library_path(explicit):
    """The library to load: --lib, $RAIDA_HEALING_LIB, the installed one, the build tree."""
    if explicit:
        return explicit
    if os.environ.get(LIBRARY_ENV):
        return os.environ[LIBRARY_ENV]
    if INSTALLED_LIBRARY and os.path.exists(INSTALLED_LIBRARY):
        return INSTALLED_LIBRARY
    if os.path.exists(BUILD_TREE_LIBRARY):
        return os.path.normpath(BUILD_TREE_LIBRARY)
    raise CannotOpen("no libraida_healing found: give --lib LIB, set %s, or install it "
                     "(make && sudo make install)" % LIBRARY_ENV)


def load_library(args):
    path = library_path(args.lib)
    try:
        return Library(path)
    except OSError as e:
        raise CannotOpen("cannot load %s: %s" % (path, e))


def open_folder(lib, folder):
    try:
        lib.open(folder)
    except RaidaError as e:
        raise CannotOpen("cannot open %s: %s" % (folder, e))


def cmd_check(args, out):
    if args.lib_positional and args.lib and args.lib_positional != args.lib:
        raise argparse.ArgumentTypeError("LIB and --lib name different libraries")
    args.lib = args.lib_positional or args.lib
    lib = load_library(args)
    report = {"library": lib.path, "version": None, "conn_info_size": None,
              "expected_conn_info_size": CONN_INFO_SIZE, "missing_exports": lib.missing}
    ok = True
    out.text("library: %s" % lib.path)
    if "raida_healing_version" in lib.missing or "raida_healing_conn_info_size" in lib.missing:
        out.text("version: unknown (no raida_healing_version: a build without standalone support)")
        ok = False
    else:
        size = lib.conn_info_size()
        report["version"], report["conn_info_size"] = lib.version(), size
        out.text("version: %s" % lib.version())
        out.text("conn_info_t: %d bytes (this tool and the legacy server: %d)" % (size, CONN_INFO_SIZE))
        if size != CONN_INFO_SIZE:
            out.warn("MISMATCH: the library's conn_info_t is not the server's")
            ok = False
    if lib.missing:
        out.warn("MISSING exports: %s" % " ".join(lib.missing))
        ok = False
    out.text("check: %s" % ("ok" if ok else "FAILED"))
    report["ok"] = ok
    out.json(report)
    return EXIT_OK if ok else EXIT_NEGATIVE


def read_only_record(lib, folder, den, sn):
    """(AN, MFS) of a coin read from its page file without the store; RaidaError(E_NO_PAGE)
    as the store would answer for a page it cannot use."""
    try:
        content = read_page_read_only(lib, folder, den, sn // RECORDS_PER_PAGE)
    except PageUnusable as e:
        raise RaidaError(E_NO_PAGE, "no page holds denomination %d serial number %d: %s"
                         % (den, sn, e))
    at = (sn % RECORDS_PER_PAGE) * RECORD_BYTES
    return content[at:at + 16], content[at + 16]


def coin_records(args, out, with_find):
    """read and find: each coin's record; with_find also says what find (60) answers for a
    given AN. Read-only unless --lock: then through the library's store (its lock held)."""
    lib = load_library(args)
    if args.lock:
        open_folder(lib, args.dir)
        read = lib.read_record
    else:
        read = lambda den, sn: read_only_record(lib, args.dir, den, sn)  # noqa: E731
    all_good = True
    coins = []
    try:
        for den, sn, given in args.coins:
            label = "%d:%d" % (den, sn)
            entry = {"coin": label, "den": den, "sn": sn}
            coins.append(entry)
            try:
                an, mfs = read(den, sn)
            except RaidaError as e:
                if e.code != E_NO_PAGE:
                    raise CannotOpen("%s: %s" % (label, e))
                entry["error"] = e.message
                out.text("%-14s no page (the server answers 40 for this coin): %s"
                         % (label, escaped(e.message)))
                all_good = False
                continue
            entry.update(an=an.hex(), mfs=mfs, used=mfs != 0)
            line = "%-14s AN %s  MFS %3d (%s)" % (label, an.hex(), mfs, "used" if mfs else "free")
            if with_find and given is not None:
                # find (60) with AN = PAN = the given AN answers 209 when the store holds
                # it and 208 otherwise; read-only, the same rule on the record just read.
                if args.lock:
                    status, _ = lib.find([(den, sn, given, given)])
                else:
                    status = 209 if an == given else 208
                entry.update(given_an=given.hex(), find_status=status, matches=status == 209)
                if status == 209:
                    line += "  given AN: matches (find 209)"
                elif status == 208:
                    line += "  given AN: DIFFERS (find 208)"
                    all_good = False
                else:
                    line += "  given AN: find answered %d %s" % (status, STATUS_NAMES.get(status, ""))
                    all_good = False
            out.text(line)
    finally:
        if args.lock:
            lib.close()
    out.json({"folder": args.dir, "coins": coins, "ok": all_good,
              "mode": "lock" if args.lock else "read-only"})
    return EXIT_OK if all_good else EXIT_NEGATIVE


def cmd_read(args, out):
    return coin_records(args, out, with_find=False)


def cmd_find(args, out):
    return coin_records(args, out, with_find=True)


# The store's lock file in Data/ (src/pagefile.rs LOCK_FILE_NAME) and the suffix of the
# temporary file it writes a page through before renaming it.
LOCK_FILE = ".raida_healing.lock"
TEMPORARY_SUFFIX = ".tmp"
# Audit details list at most this many problems of one kind (--details lists all).
TEXT_LIMIT = 20


def lock_is_held(fd):
    """Whether a process holds a flock on the open file, read from /proc/locks so the audit
    never takes the lock itself (a server or ops script starting at that moment would find
    it taken). Where /proc/locks cannot be read, a non-blocking flock is tried and released
    at once."""
    st = os.fstat(fd)
    me = "%02x:%02x:%d" % (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    try:
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    for line in lines:
        fields = line.split()
        if "->" in fields:  # a waiter, not a holder
            continue
        if "FLOCK" in fields and me in fields:
            return True
    return False


def lock_state(path):
    """None when there is no lock file or when it is a regular file no process holds: the
    library creates Data/.raida_healing.lock on first use and keeps it, and an unheld flock
    is no lock (the kernel drops it with its process). Otherwise (kind, detail): held by a
    running process, or not a regular file (a planted link or FIFO the library refuses).
    Opened without following a link or blocking; the lock itself is never taken."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return "lock_not_regular", "the lock file is not a regular file; the library refuses the folder"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as e:
        return "unreadable", "the lock file cannot be opened: %s" % e.strerror
    try:
        if lock_is_held(fd):
            return "lock_held", "a running process holds the folder lock: the folder is in use"
    finally:
        os.close(fd)
    return None


def ranges(numbers):
    """[[first, last], ...] of sorted page numbers."""
    out = []
    for n in numbers:
        if out and out[-1][1] == n - 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out


def ranges_text(spans):
    return ", ".join("%d" % a if a == b else "%d-%d" % (a, b) for a, b in spans)


def denomination_summary(page_state):
    """Per denomination: page ranges valid, missing and bad (any other page problem)."""
    summary = []
    for den in DENOMINATIONS:
        first = page_index(den, 0)
        states = page_state[first:first + PAGES_PER_DENOMINATION]
        summary.append({
            "den": den,
            "valid": ranges([p for p, s in enumerate(states) if s is None]),
            "missing": ranges([p for p, s in enumerate(states) if s == "missing"]),
            "bad": ranges([p for p, s in enumerate(states) if s not in (None, "missing")]),
        })
    return summary


def denomination_line(d):
    """One line of the summary: `den  1 (01/): valid 0-996; missing 997-999; bad none`."""
    count = lambda spans: sum(b - a + 1 for a, b in spans)  # noqa: E731
    head = "den %2d (%02x/):" % (d["den"], d["den"] & 0xFF)
    for kind in ("valid", "missing"):
        if count(d[kind]) == PAGES_PER_DENOMINATION:
            return "%s all %d pages %s" % (head, PAGES_PER_DENOMINATION, kind)
    parts = []
    for kind in ("valid", "missing", "bad"):
        n = count(d[kind])
        parts.append("%s %d%s" % (kind, n, " (%s)" % ranges_text(d[kind]) if n else ""))
    return "%s %s" % (head, "; ".join(parts))


def collapse_folder_problems(problems, linked_folders, page_dirs):
    """One problem for a page folder (one of `page_dirs`) that is a symbolic link or cannot
    be read, in place of one per page below it (a linked Data/03 is one line, not 1,000):
    the folder's entry says how many pages it takes with it."""
    folders = {p["path"]: p for p in problems
               if p["kind"] == "unreadable" and p["path"] in page_dirs}
    for rel in linked_folders:
        folders[rel] = {"kind": "symlink", "path": rel,
                        "detail": "a symbolic link where a page folder belongs; links below "
                                  "Data/ are never followed"}
    if not folders:
        return problems
    taken = {rel: 0 for rel in folders}
    kept = []
    for p in problems:
        parent = next((rel for rel in folders if p["path"].startswith(rel + "/")), None)
        if parent is not None and p["kind"] in ("symlink", "unreadable"):
            taken[parent] += 1
            continue
        if p is not folders.get(p["path"]):
            kept.append(p)
    for rel in sorted(folders):
        entry = folders[rel]
        if taken[rel]:
            entry["detail"] += " (%d pages below it unusable)" % taken[rel]
        kept.append(entry)
    return kept


def cmd_audit(args, out):
    lib = load_library(args)
    data = os.path.join(args.dir, "Data")
    try:
        data_st = os.stat(data)  # the operator's folder and Data itself may be links
    except OSError as e:
        raise CannotOpen("cannot open %s: %s" % (data, e.strerror))
    if not stat.S_ISDIR(data_st.st_mode):
        raise CannotOpen("cannot open %s: not a folder" % data)
    problems = []
    # per page index: None valid, else the problem kind
    page_state = []
    page_paths = set()
    total = lib.page_count()
    progress = sys.stderr.isatty()
    valid = 0
    for index in range(total):
        code, path, why = lib.check_page(args.dir, index)
        if code < 0:
            raise CannotOpen(why)
        page_paths.add(path)
        page_state.append(None if code == OK else PAGE_PROBLEMS.get(code, "page_problem_%d" % code))
        if code == OK:
            valid += 1
        else:
            problems.append({"kind": PAGE_PROBLEMS.get(code, "page_problem_%d" % code),
                             "path": path, "detail": why})
        if progress and (index % 250 == 249 or index == total - 1):
            sys.stderr.write("\raudit: %d/%d pages checked" % (index + 1, total))
            sys.stderr.flush()
    if progress:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()
    page_dirs = {os.path.dirname(p) for p in page_paths}
    page_dirs |= {os.path.dirname(d) for d in page_dirs}
    page_dirs.discard("")
    file_mode = stat.S_IMODE(data_st.st_mode) & 0o666
    dir_mode = stat.S_IMODE(data_st.st_mode)
    owner = (data_st.st_uid, data_st.st_gid)
    try:
        data_fd = os.open(data, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise CannotOpen("cannot open %s: %s" % (data, e.strerror))

    # Iterative (a tree of any depth; no recursion limit), one folder open at a time, each
    # opened relative to Data/ without following a link in its last component and then
    # checked to be the folder listed (device and inode), so a folder swapped for a link
    # while the walk runs is reported, not followed. Data itself may be a link (operators
    # put data on other disks): resolved once.
    real_data = os.path.realpath(data)
    linked_folders = []  # links where a page folder belongs
    pending = [("", (data_st.st_dev, data_st.st_ino))]
    while pending:
        folder_rel, identity = pending.pop()
        try:
            fd = os.open(folder_rel or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                         | os.O_CLOEXEC, dir_fd=data_fd)
        except OSError as e:
            problems.append({"kind": "unreadable", "path": folder_rel,
                             "detail": "cannot open the folder: %s" % e.strerror})
            continue
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != identity:
                problems.append({"kind": "unexpected", "path": folder_rel,
                                 "detail": "the folder changed while the audit ran"})
                continue
            try:
                names = sorted(os.listdir(fd))
            except OSError as e:
                problems.append({"kind": "unreadable", "path": folder_rel,
                                 "detail": "cannot list the folder: %s" % e.strerror})
                continue
            subfolders = []
            for name in names:
                rel = os.path.join(folder_rel, name) if folder_rel else name
                if rel == LOCK_FILE:
                    state = lock_state(os.path.join(real_data, rel))
                    if state:
                        problems.append({"kind": state[0], "path": rel, "detail": state[1]})
                    continue
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except OSError as e:
                    problems.append({"kind": "unreadable", "path": rel, "detail": e.strerror})
                    continue
                if stat.S_ISLNK(st.st_mode):
                    if rel not in page_paths and rel not in page_dirs:
                        problems.append({"kind": "unexpected", "path": rel,
                                         "detail": "a symbolic link that is no page"})
                    elif rel in page_dirs:
                        linked_folders.append(rel)
                    continue  # a link where a page or its folder belongs: the page check says so
                is_dir = stat.S_ISDIR(st.st_mode)
                if is_dir:
                    subfolders.append((rel, (st.st_dev, st.st_ino)))
                if name.endswith(TEMPORARY_SUFFIX):
                    problems.append({"kind": "temporary", "path": rel,
                                     "detail": "a temporary file left by an interrupted write"})
                elif rel not in page_paths and rel not in page_dirs:
                    problems.append({"kind": "unexpected", "path": rel,
                                     "detail": "neither a page file nor a page folder"})
                if (st.st_uid, st.st_gid) != owner:
                    problems.append({"kind": "owner", "path": rel,
                                     "detail": "owner %d:%d, Data/ has %d:%d"
                                               % (st.st_uid, st.st_gid, owner[0], owner[1])})
                want = dir_mode if is_dir else file_mode
                if stat.S_IMODE(st.st_mode) != want:
                    problems.append({"kind": "mode", "path": rel,
                                     "detail": "mode %04o, expected %04o (Data/ is %04o)"
                                               % (stat.S_IMODE(st.st_mode), want, dir_mode)})
            pending.extend(reversed(subfolders))  # depth first, in name order
        finally:
            os.close(fd)
    os.close(data_fd)
    problems = collapse_folder_problems(problems, linked_folders, page_dirs)
    counts = {}
    for p in problems:
        counts[p["kind"]] = counts.get(p["kind"], 0) + 1
    summary = denomination_summary(page_state)
    out.text("audit of %s: %d pages, %d valid" % (escaped(data), total, valid))
    out.text("pages by denomination (a page holds 1024 serial numbers; ranges are page numbers):")
    for d in summary:
        out.text("  %s" % denomination_line(d))
    # By default the details leave out missing pages (they are in the summary's ranges) and
    # list at most TEXT_LIMIT problems of a kind, in text and JSON alike; --details lists all.
    if args.details:
        details, omitted = problems, 0
    else:
        details, shown = [], {}
        for p in problems:
            if p["kind"] == "missing":
                continue
            shown[p["kind"]] = shown.get(p["kind"], 0) + 1
            if shown[p["kind"]] <= TEXT_LIMIT:
                details.append(p)
        omitted = len(problems) - len(details)
    if details:
        out.text("details:")
    listed = {}
    for p in details:
        listed[p["kind"]] = listed.get(p["kind"], 0) + 1
        out.text("  %-12s %s: %s" % (p["kind"], escaped(p["path"]), escaped(p["detail"])))
        if not args.details and listed[p["kind"]] == TEXT_LIMIT and counts[p["kind"]] > TEXT_LIMIT:
            out.text("  %-12s ... and %d more (--details lists all)"
                     % (p["kind"], counts[p["kind"]] - TEXT_LIMIT))
    if problems:
        out.text("audit: %d problems (%s)" % (len(problems), ", ".join(
            "%s %d" % (k, n) for k, n in sorted(counts.items()))))
    else:
        out.text("audit: ok")
    out.json({"folder": args.dir, "data": data, "pages": total, "valid_pages": valid,
              "denominations": summary, "counts": counts, "problems": details,
              "problems_omitted": omitted, "details": args.details, "ok": not problems})
    return EXIT_NEGATIVE if problems else EXIT_OK


# ---- metrics: a per-peer table from the metrics file (docs/metrics.md) ----

METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
METRIC_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
# Per-peer series: the column's JSON key, the metric, and its heading in the text table.
PEER_COLUMNS = [
    ("ejected", "raida_healing_peer_ejected", "STATE"),
    ("answers", "raida_healing_peer_answers_total", "ANSWERS"),
    ("failures", "raida_healing_peer_failures_total", "FAILS"),
    ("timeouts", "raida_healing_peer_timeouts_total", "TIMEOUTS"),
    ("hedges", "raida_healing_peer_hedges_total", "HEDGES"),
    ("ejections", "raida_healing_peer_ejections_total", "EJECTS"),
    ("probes", "raida_healing_peer_probes_total", "PROBES"),
    ("consecutive_failures", "raida_healing_peer_consecutive_failures", "IN-ROW"),
    ("typical_answer_seconds", "raida_healing_peer_typical_answer_seconds", "TYPICAL"),
    ("high_answer_seconds", "raida_healing_peer_high_answer_seconds", "HIGH"),
    ("next_probe_seconds", "raida_healing_peer_next_probe_seconds", "NEXT-PROBE"),
]


def unescape_label(value):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_metrics(text):
    """Prometheus text -> [(name, {label: value}, float)]; comments skipped. Raises
    ValueError naming the first line that is not a sample."""
    samples = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = METRIC_LINE.match(line)
        if not m:
            raise ValueError("line %d is not a Prometheus sample: %s" % (number, escaped(line[:80])))
        labels = {k: unescape_label(v) for k, v in METRIC_LABEL.findall(m.group(2) or "")}
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def metrics_report(samples):
    """What `metrics` shows, as one JSON-ready dict, from the library's samples."""
    def one(name, default=None):
        found = [v for n, _, v in samples if n == name]
        return found[0] if found else default

    def count(value):
        return int(value) if value is not None else None

    raidas = sorted({l.get("raida") for n, l, _ in samples if n.startswith("raida_healing_")})
    peers = {}
    for key, name, _ in PEER_COLUMNS:
        for n, labels, v in samples:
            if n == name and "peer" in labels:
                peer = peers.setdefault(int(labels["peer"]), {"peer": int(labels["peer"])})
                peer[key] = (v == 1) if key == "ejected" else (
                    v if key.endswith("seconds") else int(v))
    version = [l.get("version") for n, l, _ in samples if n == "raida_healing_build_info"]
    return {
        "raida": raidas[0] if len(raidas) == 1 else raidas,
        "version": version[0] if version else None,
        "start_time_seconds": one("raida_healing_start_time_seconds"),
        "commands": sorted(({"command": l["command"], "status": int(l["status"]), "count": int(v)}
                            for n, l, v in samples if n == "raida_healing_commands_total"),
                           key=lambda c: (c["command"], c["status"])),
        "coins_fixed": count(one("raida_healing_fix_coins_fixed_total")),
        "coins_not_fixed": count(one("raida_healing_fix_coins_not_fixed_total")),
        "panics": {l["export"]: int(v) for n, l, v in samples if n == "raida_healing_panics_total"},
        "connections": count(one("raida_healing_peer_connections")),
        "connections_limit": count(one("raida_healing_peer_connections_limit")),
        "connection_waits": count(one("raida_healing_peer_connection_waits_total")),
        "tickets": count(one("raida_healing_tickets")),
        "ticket_coins": count(one("raida_healing_ticket_coins")),
        "pool_units": count(one("raida_healing_ticket_pool_units")),
        "pool_units_limit": count(one("raida_healing_ticket_pool_units_limit")),
        "file_write_failures": count(one("raida_healing_metrics_file_write_failures_total")),
        "peers": [peers[p] for p in sorted(peers)],
    }


def seconds_text(value):
    if not value:
        return "-"
    return "%.1f ms" % (value * 1000) if value < 1 else "%.1f s" % value


def utc_text(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def cmd_metrics(args, out):
    try:
        if args.file == "-":
            text, age = sys.stdin.read(), None
        else:
            with open(args.file, "rb") as f:
                age = max(0.0, time.time() - os.fstat(f.fileno()).st_mtime)
                text = f.read().decode("utf-8", errors="replace")
    except OSError as e:
        raise CannotOpen("raida-healing metrics: cannot read %s: %s"
                         % (escaped(args.file), e.strerror))
    try:
        samples = parse_metrics(text)
    except ValueError as e:
        out.warn("raida-healing metrics: %s: %s" % (escaped(args.file), e))
        out.json({"ok": False, "file": args.file, "error": str(e)})
        return EXIT_NEGATIVE
    report = metrics_report(samples)
    if report["version"] is None:
        why = "no raida_healing_build_info: not a libraida_healing metrics file"
        out.warn("raida-healing metrics: %s: %s" % (escaped(args.file), why))
        out.json({"ok": False, "file": args.file, "error": why})
        return EXIT_NEGATIVE
    report.update(ok=True, file=args.file, file_age_seconds=age)
    out.json(report)
    started = report["start_time_seconds"]
    out.text("RAIDA %s, libraida_healing %s, running since %s%s"
             % (report["raida"], report["version"], utc_text(started) if started else "?",
                "" if age is None else "; file written %.0f s ago" % age))
    commands = ", ".join("%s %d x%d" % (c["command"], c["status"], c["count"])
                         for c in report["commands"]) or "none"
    out.text("answers (command status xN): %s" % commands)
    out.text("fixes: %s coins fixed, %s not fixed; peer connections %s of %s (%s waits); "
             "tickets %s holding %s coins, pool %s of %s units"
             % (report["coins_fixed"], report["coins_not_fixed"], report["connections"],
                report["connections_limit"], report["connection_waits"], report["tickets"],
                report["ticket_coins"], report["pool_units"], report["pool_units_limit"]))
    if report["panics"]:
        out.text("PANICS (bugs; see the server's log): %s" % ", ".join(
            "%s x%d" % kv for kv in sorted(report["panics"].items())))
    if report["file_write_failures"]:
        out.text("metrics file writes failed: %d" % report["file_write_failures"])
    out.text("")
    out.text("%4s %-8s %8s %6s %8s %6s %6s %6s %6s %9s %9s %10s"
             % ("PEER", *(h for _, _, h in PEER_COLUMNS)))
    for p in report["peers"]:
        out.text("%4d %-8s %8s %6s %8s %6s %6s %6s %6s %9s %9s %10s" % (
            p["peer"], "EJECTED" if p.get("ejected") else "ok",
            *(p.get(k, "-") for k, _, _ in PEER_COLUMNS[1:8]),
            seconds_text(p.get("typical_answer_seconds")),
            seconds_text(p.get("high_answer_seconds")),
            seconds_text(p.get("next_probe_seconds")) if p.get("ejected") else "-"))
    if not report["peers"]:
        out.text("(no peer asked yet)")
    return EXIT_OK


# ---- The claim key file (docs/tickets.md, "Authenticated claims") ----

CLAIM_KEY_BYTES = 32
CLAIM_KEY_FILE_LIMIT = 4096
KEY_ID_LABEL = b"raida-healing claim key id v1"
KEY_LINE = re.compile(r"^\s*(\w+)\s*=\s*([0-9A-Fa-f]{64})\s*$")


def claim_key_id(key):
    """The public id of a claim key: the first 2 bytes of HMAC-SHA-256(key, label), hex."""
    return hmac.new(key, KEY_ID_LABEL, hashlib.sha256).digest()[:2].hex()


def parse_claim_key_file(text):
    """{'current': bytes, 'previous': bytes (optional)} from a key file's text, by the
    library's rules (src/claim_auth/key_file.rs); ValueError says which line and why."""
    keys = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.strip().startswith("#"):
            continue
        match = KEY_LINE.match(line)
        if not match or match.group(1) not in ("current", "previous"):
            raise ValueError("line %d: expected `current = <64 hex digits>` or "
                             "`previous = <64 hex digits>`" % number)
        if match.group(1) in keys:
            raise ValueError("line %d: `%s` given twice" % (number, match.group(1)))
        keys[match.group(1)] = bytes.fromhex(match.group(2))
    if "current" not in keys:
        raise ValueError("no `current = <64 hex digits>` line")
    return keys


def read_claim_key_file(path):
    """A key file's keys, read as the library reads one: not through a link, only a regular
    file that no group or other account may read. CannotOpen says why not."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise CannotOpen("keygen: %s: %s" % (escaped(path), e.strerror))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise CannotOpen("keygen: %s: not a regular file" % escaped(path))
        if st.st_mode & 0o7177:
            raise CannotOpen("keygen: %s: mode %04o lets others in; a key file is 0600 or "
                             "stricter" % (escaped(path), st.st_mode & 0o7777))
        data = f.read(CLAIM_KEY_FILE_LIMIT + 1)
    try:
        if len(data) > CLAIM_KEY_FILE_LIMIT:
            raise ValueError("larger than %d bytes" % CLAIM_KEY_FILE_LIMIT)
        return parse_claim_key_file(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise CannotOpen("keygen: %s: %s" % (escaped(path), e))


def claim_key_text(current, previous=None):
    lines = ["# raida-healing claim key (raida-healing keygen). Keep it mode 0600, owned by the",
             "# server's account; every RAIDA of the network holds the same file.",
             "current = %s" % current.hex()]
    if previous is not None:
        lines.append("previous = %s" % previous.hex())
    return "\n".join(lines) + "\n"


def cmd_keygen(args, out):
    owner = None
    if args.owner is not None:
        try:
            entry = pwd.getpwnam(args.owner)
        except KeyError:
            raise argparse.ArgumentTypeError("no account named %r" % args.owner)
        owner = (entry.pw_uid, entry.pw_gid)
    previous = None
    if args.rotate is not None:
        previous = read_claim_key_file(args.rotate)["current"]
    current = secrets.token_bytes(CLAIM_KEY_BYTES)
    # O_EXCL: never overwrites (nor writes through a link put in its place).
    try:
        fd = os.open(args.file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                     os.O_CLOEXEC, 0o600)
    except OSError as e:
        why = ("exists; a key file is never overwritten (write a new one and rename it)"
               if e.errno == errno.EEXIST else e.strerror)
        raise CannotOpen("keygen: %s: %s" % (escaped(args.file), why))
    try:
        os.fchmod(fd, 0o600)
        if owner is not None:
            os.fchown(fd, owner[0], owner[1])
        data = claim_key_text(current, previous).encode()
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
        os.fsync(fd)
    except OSError as e:
        os.close(fd)
        os.unlink(args.file)
        raise CannotOpen("keygen: %s: %s (nothing left behind)" % (escaped(args.file),
                                                                       e.strerror))
    os.close(fd)
    report = {"file": args.file, "key_id": claim_key_id(current),
              "previous_key_id": None if previous is None else claim_key_id(previous),
              "ok": True}
    line = "keygen: wrote %s (mode 0600), key id %s" % (escaped(args.file), report["key_id"])
    if previous is not None:
        line += ", previous key id %s" % report["previous_key_id"]
    out.text(line)
    out.json(report)
    return EXIT_OK


class Output:
    """Text lines on stdout, or (--json) one JSON object on stdout; warnings on stderr."""

    def __init__(self, as_json):
        self.as_json = as_json

    def text(self, line):
        if not self.as_json:
            print(line)

    def warn(self, line):
        print(line, file=sys.stderr)

    def json(self, value):
        if self.as_json:
            print(json.dumps(dict(value, schema_version=JSON_SCHEMA_VERSION), indent=2,
                             sort_keys=True))


def build_parser():
    parser = argparse.ArgumentParser(
        prog="raida-healing",
        description="Check a libraida_healing build, or look into a stopped RAIDA server's "
                    "folder through it (Python standard library only).",
        epilog="Library: --lib LIB, else $%s, else the installed library, else the build "
               "tree. Exit codes: 0 success, 1 a negative answer or failed check, 2 usage "
               "error, 3 cannot open or read (library, folder, file). Logging: set "
               "RAIDA_HEALING_LOG=error|warning|debug to see the library's lines on stderr "
               "(quiet by default)." % LIBRARY_ENV)
    version = "raida-healing %s" % TOOL_VERSION
    parser.add_argument("--version", action="version", version=version)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, run, help, description, epilog=None, folder=None, coins=None):
        """A subcommand with --version, --json and --lib; folder: the DIR argument's help;
        coins: (parser, metavar help) of its COIN arguments."""
        p = sub.add_parser(name, help=help, description=description, epilog=epilog)
        p.add_argument("--version", action="version", version=version)
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        p.add_argument("--lib", metavar="LIB", help="path to libraida_healing.so (default: "
                       "$%s, the installed library, the build tree)" % LIBRARY_ENV)
        # DEN:SN with a negative DEN is a coin, not an option (no `--` needed).
        p._negative_number_matcher = COIN_ARGUMENT
        p.set_defaults(run=run)
        if folder:
            p.add_argument("dir", metavar="DIR", help=folder)
        if coins:
            p.add_argument("coins", metavar="COIN", nargs="+", type=coins[0], help=coins[1])
            p.add_argument("--lock", action="store_true",
                           help="open DIR through the library's store, taking its folder lock "
                                "(creates Data/.raida_healing.lock; needs DIR/config.toml and "
                                "write access) instead of reading the page files read-only")
        return p

    store_folder = "server folder (holds config.toml and Data/)"

    check = command(
        "check", cmd_check, "load the library with RTLD_NOW, check its ABI and exports",
        "Load the library with RTLD_NOW (as a server would), print its version and "
        "sizeof(conn_info_t); exit 1 when that size is not %d or a required export is "
        "missing, 3 when it does not load." % CONN_INFO_SIZE)
    check.add_argument("lib_positional", metavar="LIB", nargs="?",
                       help="path to libraida_healing.so (same as --lib)")
    coin_epilog = ("COIN: DEN:SN or DEN:SN:AN, e.g. 1:5000, -1:42 or "
                   "1:5000:feebd91947b11a5441fe8c4916e9904a (denomination -8..6, serial "
                   "number decimal, AN 32 hex digits).")
    command(
        "read", cmd_read, "print the stored AN and MFS of coins in a server folder",
        "Open the server folder DIR (config.toml and Data/) through the library and print "
        "each coin's stored AN and MFS byte (0 = free serial number). Read-only: no lock "
        "file, nothing written, a read-only copy works; each page is read whole, checked by "
        "the library's page rule. Exit 0 when every coin's page exists, 1 otherwise, 3 when "
        "the library or DIR/Data cannot be opened.",
        "COIN: DEN:SN, e.g. 1:5000 or -1:42.", store_folder, (parse_plain_coin, "DEN:SN"))
    command(
        "find", cmd_find, "the stored AN of coins, and whether a given AN is the one held",
        "As read, and for DEN:SN:AN also say whether the store holds that AN: the answer "
        "the find command (60) gives, 209 or 208 (with --lock, find itself runs through "
        "the library). Exit 0 when every coin's page "
        "exists and every given AN matches, 1 otherwise, 3 when the library or DIR cannot "
        "be opened.", coin_epilog, store_folder, (parse_coin, "DEN:SN or DEN:SN:AN"))
    audit = command(
        "audit", cmd_audit, "check a stopped server's whole Data/ tree",
        "Check every page of DIR/Data (15000 for a full server) with the library's own page "
        "rule (missing, truncated, oversized, not a regular file, a symbolic link on its "
        "path, unreadable; nothing followed, nothing blocks), and walk Data/ for temporary "
        "files left by an interrupted write, entries that are no page, owners that differ "
        "from Data/'s, modes that differ from Data/'s (folders: the same; files: its "
        "read/write bits), and a folder lock file that a running process holds or that is not a "
        "regular file (an unheld lock file is normal). Takes no lock, changes "
        "nothing. Prints per denomination the page ranges valid, missing and bad, then the "
        "details, names escaped (--json: one object); progress on stderr when it is a "
        "terminal. Exit 0 when nothing is wrong, 1 when a problem is found, 3 when the "
        "library or DIR/Data cannot be opened. A page folder that is a symbolic link or "
        "cannot be read is one problem, not one per page below it. The details leave out "
        "missing pages and list at most %d problems of a kind, in text and JSON alike; "
        "--details lists every problem." % TEXT_LIMIT, folder="server folder (holds Data/)")
    audit.add_argument("--details", action="store_true",
                       help="list every problem, missing pages included (default: at most "
                            "%d of a kind, missing pages only in the summary)" % TEXT_LIMIT)
    metrics = command(
        "metrics", cmd_metrics, "a per-peer table from a metrics file",
        "Read the Prometheus text file the library writes (RAIDA_HEALING_METRICS_FILE; - "
        "reads stdin) and print its figures: the RAIDA, version and start time, answers "
        "by command and status, fix and pool totals, then one line per peer (as `chronyc "
        "sources` does): ejected or ok, answers, failures, timeouts, hedges, ejections, "
        "probes, failures in a row, typical and high answer time, time to the next probe. "
        "Needs no library. Exit 0 when the file is a libraida_healing metrics file, 1 when "
        "it is not, 3 when it cannot be read.")
    metrics.add_argument("file", metavar="FILE", help="the metrics file, or - for stdin")
    keygen = sub.add_parser(
        "keygen", help="write a new claim key file (never overwrites)",
        description="Write FILE, a new claim key file (RAIDA_HEALING_CLAIM_KEY_FILE): a "
        "fresh 32-byte key from the OS random source as `current`, mode 0600, created with "
        "O_EXCL (an existing FILE, or a link in its place, is never written: exit 3). "
        "--rotate OLD also writes OLD's current key as `previous`, which servers accept "
        "while the new key is rolled out. Prints the key ids (public; the keys are never "
        "printed). No library is loaded.",
        epilog="Every RAIDA of the network holds the same file; how to distribute and rotate "
               "it: README.md, \"Authenticated claims\".")
    keygen.add_argument("--version", action="version", version=version)
    keygen.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    keygen.add_argument("--rotate", metavar="OLD", help="an existing key file whose current "
                        "key becomes the new file's previous key")
    keygen.add_argument("--owner", metavar="USER", help="give FILE to USER (the server's "
                        "account; the library refuses a key file another account owns)")
    keygen.add_argument("file", metavar="FILE", help="the key file to create")
    keygen.set_defaults(run=cmd_keygen)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    out = Output(args.json)
    try:
        return args.run(args, out)
    except argparse.ArgumentTypeError as e:
        print("raida-healing %s: error: %s" % (args.command, e), file=sys.stderr)
        return EXIT_USAGE
    except CannotOpen as e:
        print(str(e), file=sys.stderr)
        out.json({"ok": False, "error": str(e)})
        return EXIT_CANNOT_OPEN


if __name__ == "__main__":
    sys.exit(main())
