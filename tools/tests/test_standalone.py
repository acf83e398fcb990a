#!/usr/bin/env python3
"""Standalone mode, end to end: the built library dlopen'ed by a Python process with no
RAIDA server, working on temporary server folders (config.toml + Data/ page files).

    test_standalone.py --lib target/release/libraida_healing.so \
        --host-present build/host_present --fake-abi build/standalone/libfake_abi.so

Checks exact statuses and bytes of get_ticket, validate_ticket, find and fix (against 24
loopback fake peers that speak the legacy wire format), the page files on disk after a
kill -9, the folder lock between processes, the open/read_record error codes and
last_error texts, the header constants, logging, and the ops tool's CLI. Ends with
"N passed, M failed"; exits non-zero on any failure.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import zlib

import tally

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
TOOL = os.path.join(ROOT, "tools", "raida_healing.py")
CHILD = os.path.join(HERE, "standalone_child.py")
sys.path.insert(0, os.path.join(ROOT, "tools"))

# A safety net only: every fake peer answers at once, so a fix never waits this long.
os.environ["RAIDA_HEALING_PEER_DEADLINE_MS"] = "10000"
os.environ.pop("RAIDA_HEALING_LOG", None)
os.environ.pop("RAIDA_HEALING_CACHE_PAGES", None)

import raida_healing as rh  # noqa: E402

# The Python test kit: the wire, page files, fake peers, the header's statuses.
sys.path.insert(0, os.path.join(ROOT, "c_tests", "node"))
import raida_wire as rw  # noqa: E402

ARGS = None  # parsed command line: lib, host_present, fake_abi
LIB = None   # the library, loaded once into this process (no server here)

RAIDA_ID = 3
COIN_ID = 6


# ---- Store fixtures ----

def stored_an(den, sn):
    """The AN planted for a coin: distinct for every coin, reproducible."""
    return hashlib.md5(b"planted %d %d" % (den, sn)).digest()


def plant_page(folder, den, page, free=()):
    """Writes page (den, page) with stored_an() for every record, MFS 1 (0 for `free`)."""
    data = bytearray()
    for k in range(1024):
        sn = page * 1024 + k
        data += stored_an(den, sn) + bytes([0 if sn in free else 1])
    path = rw.page_path(folder, den, page)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return bytes(data)


def write_config(folder, servers, raida_id=RAIDA_ID):
    items = "\n".join('  "%s",' % s for s in servers)
    text = ("# written by test_standalone.py, legacy layout\n[server]\nraida_id = %d\n"
            "coin_id = %d\nport = 50003\nthreads = 4\nraida_servers = [\n%s\n]\n"
            "[database]\npath = \"ignored\"\n" % (raida_id, COIN_ID, items))
    with open(os.path.join(folder, "config.toml"), "w") as f:
        f.write(text)


def new_folder(test, servers=None):
    folder = tempfile.mkdtemp(prefix="raida_standalone_")
    test.addCleanup(shutil.rmtree, folder, True)
    os.makedirs(os.path.join(folder, "Data"))
    write_config(folder, servers or ["127.0.0.1:%d" % (1 + i) for i in range(25)])
    return folder


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def mfs_now():
    """get_mfs(): (tm_year - 123) * 12 + (tm_mon - 1), truncated to 8 bits, from UTC."""
    t = time.gmtime()
    return ((t.tm_year - 1900 - 123) * 12 + (t.tm_mon - 1 - 1)) & 0xFF


def fake_peers(test, answers):
    """rw.TicketPeers for every RAIDA but this one, closed when the test ends."""
    peers = rw.TicketPeers(answers, me=RAIDA_ID)
    test.addCleanup(peers.close)
    return peers


# ---- Tests ----

class NoServerProcess(unittest.TestCase):
    """This process has no RAIDA server: the library loads and explains itself."""

    def tearDown(self):
        LIB.close()

    def test_version_and_abi_size(self):
        self.assertEqual(LIB.version(), cargo_version())
        self.assertEqual(LIB.conn_info_size(), 336)

    def test_handlers_answer_252_and_say_why_before_open(self):
        status, out = LIB.find([(1, 5, bytes(16), bytes(16))])
        self.assertEqual((status, out), (252, b""))
        self.assertIn("no folder opened with raida_healing_open", LIB.last_error())
        with self.assertRaises(rh.RaidaError) as e:
            LIB.read_record(1, 5)
        self.assertEqual(e.exception.code, rh.E_NOT_OPEN)
        self.assertEqual(e.exception.message, "no folder is open; call raida_healing_open first")

    def test_header_codes_match_the_tool(self):
        with open(os.path.join(ROOT, "include", "raida_healing.h")) as f:
            header = f.read()
        defined = dict(re.findall(r"#define (RAIDA_HEALING_(?:OK|E_\w+)) (-?\d+)", header))
        expected = {name: str(code) for code, name in rh.CODE_NAMES.items()}
        expected["RAIDA_HEALING_OK"] = "0"
        self.assertEqual(defined, expected)
        for name in ("const char *raida_healing_version(void);",
                     "size_t raida_healing_conn_info_size(void);",
                     "int raida_healing_open(const char *dir);",
                     "const char *raida_healing_last_error(void);",
                     "void raida_healing_close(void);"):
            self.assertIn(name, header)

    def test_status_names_match_the_header(self):
        # The tool's own table (it runs without the source tree) against the header's
        # RAIDA_STATUS_* macros, which cbindgen generates from src/protocol.rs.
        from_header = {code: name for name, code in rw.header_statuses().items()}
        self.assertEqual(len(from_header), len(rw.header_statuses()), "two names share a code")
        self.assertEqual(rh.STATUS_NAMES, from_header)

    def test_handlers_match_the_header(self):
        # The tool's handler table (it runs without the header) against the header's
        # RAIDA_HEALING_COMMANDS list, which build.rs generates from the command table.
        self.assertEqual({name: code for code, name in rh.HANDLERS.items()},
                         rw.header_commands())
        self.assertTrue(set(rh.HANDLERS.values()) <= set(rh.REQUIRED_EXPORTS))

    def test_the_tools_wire_matches_the_kit(self):
        # The installed tool keeps its own minimal framing (it cannot import test code):
        # the same facts as the kit's.
        self.assertEqual((rh.GET_TICKET, rh.VALIDATE_TICKET, rh.FIND, rh.FIX),
                         (rw.CMD_GET_TICKET, rw.CMD_VALIDATE_TICKET, rw.CMD_FIND, rw.CMD_FIX))
        self.assertEqual((rh.TRAILER, rh.TOTAL_RAIDA_SERVERS), (rw.TRAILER, rw.TOTAL_RAIDA))
        twelve, payload = bytes(range(12)), bytes([1, 0, 0, 19, 136]) + bytes(16)
        self.assertEqual(rh.frame(payload, challenge=twelve),
                         rw.new_challenge(twelve) + payload + rw.TRAILER)
        for den, sn in ((1, 5000), (-8, 0), (6, 1023999), (-1, 7)):
            self.assertEqual(rh.coin_bytes(den, sn), rw.coin_bytes(den, sn))

    def test_open_errors_have_codes_and_reasons(self):
        self.assertEqual(LIB._lib.raida_healing_open(None), rh.E_ARGUMENT)
        self.assertEqual(LIB.last_error(), "dir is NULL")

        folder = new_folder(self)
        os.remove(os.path.join(folder, "config.toml"))
        with self.assertRaises(rh.RaidaError) as e:
            LIB.open(folder)
        self.assertEqual(e.exception.code, rh.E_CONFIG)
        self.assertEqual(e.exception.message, "%s/config.toml: No such file or directory (os error 2)"
                         % folder)

        with open(os.path.join(folder, "config.toml"), "w") as f:
            f.write("[server]\nraida_id = 30\n")
        with self.assertRaises(rh.RaidaError) as e:
            LIB.open(folder)
        self.assertEqual(e.exception.code, rh.E_CONFIG)
        self.assertEqual(e.exception.message,
                         "%s/config.toml:2: raida_id is 30, expected 0..=24" % folder)

        write_config(folder, ["127.0.0.1:%d" % (1 + i) for i in range(25)])
        os.rmdir(os.path.join(folder, "Data"))
        with self.assertRaises(rh.RaidaError) as e:
            LIB.open(folder)
        self.assertEqual(e.exception.code, rh.E_DATA)
        self.assertEqual(e.exception.message,
                         "%s/Data is not a folder (the page files live there)" % folder)

        os.makedirs(os.path.join(folder, "Data"))
        LIB.open(folder)
        self.assertEqual(LIB.last_error(), "")
        with self.assertRaises(rh.RaidaError) as e:
            LIB.open(folder)
        self.assertEqual(e.exception.code, rh.E_ALREADY_OPEN)
        self.assertEqual(e.exception.message,
                         "%s is already open in this process; call raida_healing_close first"
                         % folder)
        LIB.close()
        self.assertEqual(LIB.last_error(), "")

    def test_open_is_refused_in_a_server_process(self):
        folder = new_folder(self)
        run = subprocess.run([ARGS.host_present, folder], capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertEqual(run.stdout, "%d this process is a RAIDA server (get_page_by_sn_lock, "
                         "unlock_page or config is linked in); the handlers use its page cache, "
                         "and a second store is never opened under it\n" % rh.E_SERVER_PRESENT)
        self.assertFalse(os.path.exists(os.path.join(folder, "Data", ".raida_healing.lock")))


class Commands(unittest.TestCase):
    """get_ticket, validate_ticket, find and read_record on page files."""

    def setUp(self):
        self.folder = new_folder(self)
        self.page4 = plant_page(self.folder, 1, 4, free={5003})   # sn 4096..5119
        plant_page(self.folder, -1, 0)
        LIB.open(self.folder)
        self.addCleanup(LIB.close)

    def test_get_ticket_then_validate_ticket(self):
        good, bad = (1, 5000, stored_an(1, 5000)), (1, 5001, bytes(16))
        other = (-1, 7, stored_an(-1, 7))
        status, out = LIB.get_ticket([good, bad, other])
        self.assertEqual(status, 243)
        self.assertEqual(len(out), 5)
        self.assertEqual(out[0], 0b101)
        ticket = struct.unpack(">I", out[1:])[0]
        self.assertNotEqual(ticket, 0)

        self.assertEqual(LIB.validate_ticket(7, ticket),
                         (250, rh.coin_bytes(1, 5000) + rh.coin_bytes(-1, 7)))
        self.assertEqual(LIB.validate_ticket(7, ticket), (44, b""))
        self.assertEqual(LIB.validate_ticket(8, ticket),
                         (250, rh.coin_bytes(1, 5000) + rh.coin_bytes(-1, 7)))
        self.assertEqual(LIB.validate_ticket(25, ticket), (18, b""))
        self.assertEqual(LIB.validate_ticket(7, 0), (43, b""))

        status, out = LIB.get_ticket([good, other])
        self.assertEqual((status, len(out)), (241, 4))
        self.assertEqual(LIB.get_ticket([bad]), (242, b""))
        # a coin on a missing page: 40 for the whole request
        self.assertEqual(LIB.get_ticket([good, (1, 6000, bytes(16))]), (40, b""))
        self.assertEqual(LIB.call(rh.GET_TICKET, None), (36, b""))

    def test_find(self):
        a, b = stored_an(1, 5000), stored_an(1, 5001)
        self.assertEqual(LIB.find([(1, 5000, a, bytes(16)), (1, 5001, b, a)]), (209, b""))
        self.assertEqual(LIB.find([(1, 5000, bytes(16), a)]), (210, b""))
        self.assertEqual(LIB.find([(1, 5000, b, b)]), (208, b""))
        self.assertEqual(LIB.find([(1, 5000, a, b), (1, 5001, a, b), (-1, 9, a, b)]),
                         (211, bytes([1, 2, 0])))
        # modern framing (encryption type 4): payload, HMAC, trailer
        self.assertEqual(LIB.find([(1, 5001, b, a)], encryption_type=4), (209, b""))
        self.assertEqual(LIB.find([(1, 5000, a, a), (2, 5000, a, a)]), (40, b""))
        self.assertEqual(LIB.find([(9, 1, a, a)]), (40, b""))

    def test_read_record(self):
        self.assertEqual(LIB.read_record(1, 5002), (stored_an(1, 5002), 1))
        self.assertEqual(LIB.read_record(1, 5003), (stored_an(1, 5003), 0))
        self.assertEqual(LIB.read_record(-1, 1023), (stored_an(-1, 1023), 1))
        with self.assertRaises(rh.RaidaError) as e:
            LIB.read_record(1, 6000)
        self.assertEqual(e.exception.code, rh.E_NO_PAGE)
        self.assertEqual(e.exception.message,
                         "no page holds denomination 1 serial number 6000 (no file %s)"
                         % rw.page_path(self.folder, 1, 5))
        with self.assertRaises(rh.RaidaError) as e:
            LIB.read_record(7, 1)
        self.assertEqual(e.exception.code, rh.E_NO_PAGE)
        # reading changed nothing on disk
        self.assertEqual(read_file(rw.page_path(self.folder, 1, 4)), self.page4)


class Fix(unittest.TestCase):
    """fix against 24 loopback fake peers; the new records are on disk when it answers."""

    PG = bytes(range(16))

    def plan(self):
        """Coins A..D on two pages and who lists them (this server is RAIDA 3; peer 24 has
        no ticket): A by all 23 asked peers, B by 13 (14 votes: fixed), C by 12 (13 votes:
        not fixed), D by 11 plus one liar listing it 20 times (one vote: not fixed)."""
        asked = [i for i in range(25) if i not in (RAIDA_ID, 24)]
        a, b, c, d = (1, 5000), (1, 5001), (1, 5002), (1, 6000)
        answers, tickets = {}, [0] * 25
        for n, i in enumerate(asked):
            coins = [a]
            if n < 13:
                coins.append(b)
            if n < 12:
                coins.append(c)
            if n < 11:
                coins.append(d)
            if n == 11:
                coins += [d] * 20
            tickets[i] = 0x1000 + i
            answers[i] = {tickets[i]: coins}
        return [a, b, c, d], answers, tickets, asked

    def test_fix_rewrites_exactly_the_confirmed_coins(self):
        coins, answers, tickets, asked = self.plan()
        peers = fake_peers(self, answers)
        folder = new_folder(self, peers.servers())
        page4 = plant_page(folder, 1, 4)
        page5 = plant_page(folder, 1, 5)
        LIB.open(folder)
        self.addCleanup(LIB.close)
        mfs_before = mfs_now()
        status, out = LIB.fix(coins, self.PG, tickets, coin_id=COIN_ID)
        mfs_after = mfs_now()
        self.assertEqual((status, out), (243, bytes([0b0011])), LIB.last_error())

        disk4 = read_file(rw.page_path(folder, 1, 4))
        self.assertEqual(len(disk4), rw.PAGE_BYTES)
        expected = bytearray(page4)
        for sn in (5000, 5001):
            an, mfs = rw.record_in(disk4, sn)
            self.assertEqual(an, rw.derive_an(RAIDA_ID, 1, sn, self.PG))
            self.assertIn(mfs, (mfs_before, mfs_after))
            at = (sn % 1024) * rw.RECORD_BYTES
            expected[at:at + rw.RECORD_BYTES] = an + bytes([mfs])
        self.assertEqual(disk4, bytes(expected))  # every other record untouched
        self.assertEqual(read_file(rw.page_path(folder, 1, 5)), page5)
        self.assertEqual(rw.derive_an(3, 1, 5000, self.PG).hex(), "feebd91947b11a5441fe8c4916e9904a")

        # every peer with a ticket was asked exactly as the wire format says; peer 24 never
        for i, peer in peers.peers.items():
            if i not in asked:
                self.assertEqual(peer.requests, [], "peer %d has no ticket" % i)
                continue
            self.assertGreaterEqual(len(peer.requests), 1, "peer %d was not asked" % i)
            for head, body in peer.requests:
                self.assertEqual(head, rw.validate_request_header(i, COIN_ID))
                self.assertEqual(body[12:16], struct.pack(">I", zlib.crc32(body[:12])))
                self.assertEqual(body[16:], bytes([RAIDA_ID]) + struct.pack(">I", tickets[i])
                                 + rh.TRAILER)

    def test_a_write_that_fails_answers_252_and_changes_nothing(self):
        coins, answers, tickets, _ = self.plan()
        peers = fake_peers(self, answers)
        folder = new_folder(self, peers.servers())
        page4 = plant_page(folder, 1, 4)
        plant_page(folder, 1, 5)
        # a folder where the temporary page file must go: the write fails before the rename
        os.mkdir(rw.page_path(folder, 1, 4) + ".tmp")
        LIB.open(folder)
        self.addCleanup(LIB.close)
        status, out = LIB.fix(coins, self.PG, tickets, coin_id=COIN_ID)
        self.assertEqual((status, out), (252, b""))
        self.assertIn("writing %s" % rw.page_path(folder, 1, 4), LIB.last_error())
        self.assertEqual(read_file(rw.page_path(folder, 1, 4)), page4)
        self.assertEqual(LIB.read_record(1, 5000), (stored_an(1, 5000), 1))


class HostileFolder(unittest.TestCase):
    """Files planted below Data/ by the account that owns it, while root runs a fix through
    raida_healing_open, the documented ops workflow."""

    def fix_with_planted_tmp(self, plant):
        """Runs Fix's plan with plant(tmp_path) done first; fails rather than hangs when the
        fix blocks. Returns (status, out, folder, page4 before)."""
        coins, answers, tickets, _ = Fix().plan()
        peers = fake_peers(self, answers)
        folder = new_folder(self, peers.servers())
        page4 = plant_page(folder, 1, 4)
        plant_page(folder, 1, 5)
        plant(rw.page_path(folder, 1, 4) + ".tmp")
        LIB.open(folder)
        self.addCleanup(LIB.close)
        result = []
        worker = threading.Thread(
            target=lambda: result.append(LIB.fix(coins, Fix.PG, tickets, coin_id=COIN_ID)),
            daemon=True)
        worker.start()
        worker.join(60)
        self.assertFalse(worker.is_alive(), "the fix blocked for a minute")
        return result[0] + (folder, page4)

    def test_a_symlinked_temporary_page_file_is_never_written_through(self):
        victim = os.path.join(tempfile.mkdtemp(prefix="raida_victim_"), "shadow")
        self.addCleanup(shutil.rmtree, os.path.dirname(victim))
        with open(victim, "wb") as f:
            f.write(b"root:secret\n")
        os.chmod(victim, 0o600)
        as_root = os.geteuid() == 0
        if not as_root:
            print("\n  skipped: the owner checks (a page owned by another account needs root)")

        def plant(tmp):
            if as_root:  # the page belongs to the server's account, as on a real server
                os.chown(tmp[:-len(".tmp")], 4321, 4321)
            os.symlink(victim, tmp)

        before = os.stat(victim)
        status, out, folder, _ = self.fix_with_planted_tmp(plant)
        self.assertEqual((status, out), (243, bytes([0b0011])), LIB.last_error())
        after = os.stat(victim)
        self.assertEqual(read_file(victim), b"root:secret\n")
        self.assertEqual((after.st_mode, after.st_uid, after.st_gid),
                         (before.st_mode, before.st_uid, before.st_gid))
        page = rw.page_path(folder, 1, 4)
        self.assertFalse(os.path.islink(page))
        self.assertEqual(len(read_file(page)), rw.PAGE_BYTES)
        self.assertEqual(rw.record_in(read_file(page), 5000)[0], rw.derive_an(RAIDA_ID, 1, 5000, Fix.PG))
        if as_root:
            self.assertEqual((os.stat(page).st_uid, os.stat(page).st_gid), (4321, 4321))
        self.assertFalse(os.path.lexists(page + ".tmp"))

    def test_a_fifo_temporary_page_file_neither_blocks_nor_is_reused(self):
        status, out, folder, _ = self.fix_with_planted_tmp(os.mkfifo)
        self.assertEqual((status, out), (243, bytes([0b0011])), LIB.last_error())
        page = rw.page_path(folder, 1, 4)
        self.assertEqual(rw.record_in(read_file(page), 5001)[0], rw.derive_an(RAIDA_ID, 1, 5001, Fix.PG))
        self.assertFalse(os.path.lexists(page + ".tmp"))

    def test_read_record_names_what_is_wrong_with_a_page(self):
        folder = new_folder(self, ["127.0.0.1:1"] * 25)
        plant_page(folder, 1, 4)
        with open(rw.page_path(folder, 1, 4), "r+b") as f:
            f.truncate(100)
        LIB.open(folder)
        self.addCleanup(LIB.close)
        with self.assertRaises(rh.RaidaError) as e:
            LIB.read_record(1, 4096)
        self.assertEqual(e.exception.code, rh.E_NO_PAGE)
        self.assertEqual(e.exception.message,
                         "no page holds denomination 1 serial number 4096 (%s: truncated page "
                         "file: 100 bytes, a page file has 17408)" % rw.page_path(folder, 1, 4))


class Processes(unittest.TestCase):
    """Two processes and one folder; a kill -9 between and during commands."""

    def child(self, folder, *args):
        return subprocess.Popen([sys.executable, CHILD, ARGS.lib, folder] + list(args),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def test_a_second_process_cannot_open_the_same_folder(self):
        folder = new_folder(self)
        LIB.open(folder)
        try:
            child = self.child(folder, "hold")
            out, _ = child.communicate("", timeout=60)
            self.assertEqual(json.loads(out), [rh.E_LOCKED,
                             "%s/Data is locked by another process (another ops script has "
                             "this store open)" % folder])
        finally:
            LIB.close()
        # released by close: the other process may now open it, and holds it in turn
        child = self.child(folder, "hold")
        self.assertEqual(json.loads(child.stdout.readline()), [0, ""])
        with self.assertRaises(rh.RaidaError) as e:
            LIB.open(folder)
        self.assertEqual(e.exception.code, rh.E_LOCKED)
        child.communicate("", timeout=60)
        self.assertEqual(child.returncode, 0)

    def test_fixes_survive_kill_9(self):
        # fix k rewrites coin (1, 10 + k); every peer lists it for its ticket 1000 * (k+1) + i
        fixes, answers = [], {i: {} for i in range(25)}
        for k in range(40):
            tickets = [0] * 25
            for i in range(25):
                if i != RAIDA_ID:
                    tickets[i] = 1000 * (k + 1) + i
                    answers[i][tickets[i]] = [(1, 10 + k)]
            fixes.append({"coins": [[1, 10 + k]], "pg": bytes([k] * 16).hex(),
                          "tickets": tickets})
        peers = fake_peers(self, answers)
        folder = new_folder(self, peers.servers())
        original = plant_page(folder, 1, 0)
        mfs_before = mfs_now()
        child = self.child(folder, "fix-loop", json.dumps({"coin_id": COIN_ID, "fixes": fixes}))
        answered = []
        try:
            while len(answered) < 3:
                line = child.stdout.readline()
                self.assertTrue(line, "the child ended early")
                answered.append(json.loads(line))
            os.kill(child.pid, signal.SIGKILL)  # most likely in the middle of fix 3
        finally:
            child.kill()
            child.wait(60)
        mfs_after = mfs_now()
        self.assertEqual(answered, [[k, 241, ""] for k in range(3)])

        disk = read_file(rw.page_path(folder, 1, 0))
        self.assertEqual(len(disk), rw.PAGE_BYTES)  # never torn
        for sn in range(1024):
            an, mfs = rw.record_in(disk, sn)
            new = rw.derive_an(RAIDA_ID, 1, sn, bytes([sn - 10] * 16)) if 10 <= sn < 50 else None
            if 10 <= sn < 13:
                # answered before the kill: must be on disk
                self.assertEqual(an, new, "sn %d lost after kill -9" % sn)
                self.assertIn(mfs, (mfs_before, mfs_after))
            elif an != stored_an(1, sn) or mfs != 1:
                # only a fix in flight at the kill may have landed, and then whole
                self.assertEqual(an, new, "sn %d torn" % sn)
                self.assertIn(mfs, (mfs_before, mfs_after))
        # the dead process's lock is gone with it; the new records read back
        LIB.open(folder)
        try:
            self.assertEqual(LIB.read_record(1, 10)[0], rw.derive_an(RAIDA_ID, 1, 10, bytes(16)))
        finally:
            LIB.close()
        self.assertEqual(original[:10 * rw.RECORD_BYTES], disk[:10 * rw.RECORD_BYTES])


def cargo_version():
    with open(os.path.join(ROOT, "Cargo.toml")) as f:
        return re.search(r'^version = "(.*)"$', f.read(), re.M).group(1)


def full_folder(test):
    """A folder whose Data/ holds all 15000 pages: one planted page hard-linked to every
    other page path (same bytes, owner and mode; 17 KiB of disk)."""
    folder = new_folder(test)
    first = plant_page(folder, -8, 0)
    source = rw.page_path(folder, -8, 0)
    for den in range(-8, 7):
        for page in range(1000):
            path = rw.page_path(folder, den, page)
            if path != source:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                os.link(source, path)
    return folder, first


# A metrics file as the library writes it (docs/metrics.md), for `metrics --json`'s
# schema: one peer ejected, one healthy, a panic, every total.
METRICS_SAMPLE = """\
# HELP raida_healing_build_info The library's version; always 1.
# TYPE raida_healing_build_info gauge
raida_healing_build_info{raida="3",version="0.1.0"} 1
raida_healing_start_time_seconds{raida="3"} 1796540462.345
raida_healing_commands_total{raida="3",command="fix",status="241"} 11
raida_healing_commands_total{raida="3",command="find",status="209"} 12
raida_healing_panics_total{raida="3",export="cmd_fix"} 1
raida_healing_fix_coins_fixed_total{raida="3"} 11
raida_healing_fix_coins_not_fixed_total{raida="3"} 1
raida_healing_peer_answers_total{raida="3",peer="0"} 12
raida_healing_peer_answers_total{raida="3",peer="7"} 0
raida_healing_peer_failures_total{raida="3",peer="0"} 0
raida_healing_peer_failures_total{raida="3",peer="7"} 3
raida_healing_peer_timeouts_total{raida="3",peer="0"} 0
raida_healing_peer_timeouts_total{raida="3",peer="7"} 0
raida_healing_peer_hedges_total{raida="3",peer="0"} 0
raida_healing_peer_hedges_total{raida="3",peer="7"} 0
raida_healing_peer_ejections_total{raida="3",peer="0"} 0
raida_healing_peer_ejections_total{raida="3",peer="7"} 1
raida_healing_peer_probes_total{raida="3",peer="0"} 0
raida_healing_peer_probes_total{raida="3",peer="7"} 0
raida_healing_peer_ejected{raida="3",peer="0"} 0
raida_healing_peer_ejected{raida="3",peer="7"} 1
raida_healing_peer_consecutive_failures{raida="3",peer="0"} 0
raida_healing_peer_consecutive_failures{raida="3",peer="7"} 3
raida_healing_peer_next_probe_seconds{raida="3",peer="0"} 0
raida_healing_peer_next_probe_seconds{raida="3",peer="7"} 7.25
raida_healing_peer_typical_answer_seconds{raida="3",peer="0"} 0.0021
raida_healing_peer_typical_answer_seconds{raida="3",peer="7"} 0
raida_healing_peer_high_answer_seconds{raida="3",peer="0"} 0.0083
raida_healing_peer_high_answer_seconds{raida="3",peer="7"} 0
raida_healing_peer_connections{raida="3"} 0
raida_healing_peer_connections_limit{raida="3"} 256
raida_healing_peer_connection_waits_total{raida="3"} 0
raida_healing_tickets{raida="3"} 2
raida_healing_ticket_coins{raida="3"} 2
raida_healing_ticket_pool_units{raida="3"} 16
raida_healing_ticket_pool_units_limit{raida="3"} 1050368
raida_healing_metrics_file_write_failures_total{raida="3"} 0
"""


class Tool(unittest.TestCase):
    """tools/raida_healing.py (installed as raida-healing) as an operator runs it."""

    def run_tool(self, *args, env=None, tool=TOOL, **kw):
        if env is None:
            env = dict(os.environ)
            env.pop("RAIDA_HEALING_LIB", None)
        if "stderr" not in kw:
            kw["capture_output"] = True
        return subprocess.run([sys.executable, tool] + list(args), text=True, timeout=120,
                              env=env, **kw)

    def run_json(self, *args, code, keep_schema_version=False):
        """The --json object of a run that exits `code`; its schema_version is checked and
        taken out (unless keep_schema_version) so the tests compare the fields alone."""
        run = self.run_tool(*args, "--json")
        self.assertEqual(run.returncode, code, run.stdout + run.stderr)
        report = json.loads(run.stdout)
        if not keep_schema_version:
            self.assertEqual(report.pop("schema_version"), rh.JSON_SCHEMA_VERSION)
        return report

    # ---- the --json schema of docs/standalone.md ("JSON output of the ops tool") ----

    def documented_json_fields(self):
        """{section: {field: (set of types, always)}} from the tables of docs/standalone.md:
        section is the subcommand, or "error" for the object of exit 3."""
        with open(os.path.join(ROOT, "docs", "standalone.md")) as f:
            text = f.read()
        part = text.split("## JSON output of the ops tool", 1)[1].split("\n## ", 1)[0]
        sections = {}
        for heading, body in re.findall(r"^### (.*)\n((?:.*\n)*?)(?=^### |\Z)", part, re.M):
            m = re.match(r"`raida-healing (\w+) --json`$", heading)
            name = m.group(1) if m else ("error" if "exit 3" in heading else heading)
            fields = {}
            for row in re.findall(r"^\| `([^`]+)` \| ([^|]+) \| ([^|]+) \|", body, re.M):
                fields[row[0]] = (set(row[1].strip().split(" or ")), row[2].strip() == "always")
            self.assertTrue(fields, "docs/standalone.md: section %r has no field table" % heading)
            sections[name] = fields
        return sections

    def json_fields(self, value, prefix=""):
        """[(field, JSON type)] of an object, nested objects of arrays as `a[].b`."""
        names = {bool: "boolean", int: "integer", float: "number", str: "string",
                 list: "array", dict: "object", type(None): "null"}
        out = []
        for key, item in value.items():
            out.append((prefix + key, names[type(item)]))
            if isinstance(item, list):
                for element in item:
                    if isinstance(element, dict):
                        out += self.json_fields(element, prefix + key + "[].")
        return out

    def json_examples(self):
        """{section: [--json objects]}: every subcommand run so that each documented field
        shows (a new subcommand adds its runs here)."""
        folder = new_folder(self)
        plant_page(folder, 1, 4, free={5003})
        an = stored_an(1, 5001).hex()
        os.symlink(os.path.join(folder, "Data", "01"), os.path.join(folder, "Data", "02"))
        lib = ("--lib", ARGS.lib)
        run = lambda *args, code: self.run_json(*args, code=code, keep_schema_version=True)  # noqa: E731
        keys = tempfile.mkdtemp(prefix="raida-keygen-json-")
        self.addCleanup(shutil.rmtree, keys)
        first, second = os.path.join(keys, "first.key"), os.path.join(keys, "second.key")
        prom = os.path.join(folder, "raida_healing.prom")
        with open(prom, "w") as f:
            f.write(METRICS_SAMPLE)
        junk = os.path.join(folder, "junk.prom")
        with open(junk, "w") as f:
            f.write("not a sample line\n")
        return {
            "metrics": [run("metrics", prom, code=0), run("metrics", junk, code=1)],
            "keygen": [run("keygen", first, code=0),
                       run("keygen", "--rotate", first, second, code=0)],
            "check": [run("check", *lib, code=0), run("check", ARGS.fake_abi, code=1)],
            "read": [run("read", folder, *lib, "1:5000", "1:5003", "2:1", code=1),
                     run("read", folder, "--lock", *lib, "1:5000", code=0)],
            "find": [run("find", folder, *lib, "1:5001:" + an, "1:5002:" + "00" * 16, "1:7",
                         "2:1:" + an, code=1)],
            "audit": [run("audit", folder, *lib, code=1),
                      run("audit", folder, "--details", *lib, code=1)],
            "error": [run("read", folder + "/missing", *lib, "1:1", code=3),
                      run("audit", folder + "/missing", *lib, code=3)],
        }

    def test_json_output_matches_its_documented_schema(self):
        documented = self.documented_json_fields()
        parser = rh.build_parser()
        commands = next(a for a in parser._actions
                        if isinstance(a, argparse._SubParsersAction)).choices
        self.assertEqual(set(documented), set(commands) | {"error"},
                         "docs/standalone.md documents the JSON of exactly these sections")
        examples = self.json_examples()
        self.assertEqual(set(examples), set(documented), "an example run per section")
        for section, reports in examples.items():
            fields = documented[section]
            seen = set()
            for report in reports:
                self.assertEqual(report["schema_version"], rh.JSON_SCHEMA_VERSION)
                printed = self.json_fields(report)
                for field, kind in printed:
                    self.assertIn(field, fields, "%s --json prints %s, which docs/standalone.md "
                                  "does not document" % (section, field))
                    self.assertIn(kind, fields[field][0], "%s --json: %s is %s, documented %s"
                                  % (section, field, kind, fields[field][0]))
                    seen.add(field)
                names = {field for field, _ in printed}
                for field, (_, always) in fields.items():
                    # an "always" field of an array's objects shows wherever the array has one
                    owner = field.rsplit("[].", 1)[0] if "[]." in field else None
                    if always and (owner is None or report.get(owner.split("[].")[0])):
                        self.assertIn(field, names, "%s --json lacks %s, documented as always "
                                      "present" % (section, field))
            self.assertEqual(seen, set(fields), "%s: documented fields no example printed"
                             % section)

    def test_help_version_and_usage_errors(self):
        run = self.run_tool("--help")
        self.assertEqual(run.returncode, 0)
        for word in ("check", "read", "find", "audit", "RAIDA_HEALING_LOG", "RAIDA_HEALING_LIB",
                     "3 cannot open"):
            self.assertIn(word, run.stdout)
        self.assertEqual(rh.TOOL_VERSION, cargo_version())
        for args in (["--version"], ["check", "--version"], ["read", "--version"],
                     ["find", "--version"], ["audit", "--version"]):
            run = self.run_tool(*args)
            self.assertEqual((run.returncode, run.stdout), (0, "raida-healing %s\n" % cargo_version()), args)
        for command in ("check", "read", "find", "audit"):
            run = self.run_tool(command, "--help")
            self.assertEqual(run.returncode, 0)
            self.assertIn("--json", run.stdout)
            self.assertIn("--lib", run.stdout)
        for args in ([], ["nonsense"], ["read"], ["read", "/x"], ["read", "/x", "1:99999999"],
                     ["read", "/x", "1:1:" + "00" * 16], ["find", "/x", "1:2:zz"],
                     ["audit"], ["audit", "/x", "/y"], ["check", "--bogus"]):
            run = self.run_tool(*args)
            self.assertEqual(run.returncode, 2, (args, run.stderr))
            self.assertEqual(run.stdout, "")
            self.assertIn("usage: raida-healing", run.stderr)
        self.assertIn("serial number must be 0..1023999",
                      self.run_tool("read", "/x", "1:99999999").stderr)

    def test_keygen_writes_a_private_key_file_and_never_overwrites(self):
        folder = tempfile.mkdtemp(prefix="raida-keygen-")
        self.addCleanup(shutil.rmtree, folder)
        path = os.path.join(folder, "claim.key")
        report = self.run_json("keygen", path, code=0)
        st = os.lstat(path)
        self.assertEqual((stat.S_IFMT(st.st_mode), st.st_mode & 0o7777, st.st_uid),
                         (stat.S_IFREG, 0o600, os.geteuid()))
        with open(path) as f:
            text = f.read()
        keys = rh.parse_claim_key_file(text)
        self.assertEqual(sorted(keys), ["current"])
        self.assertEqual(len(keys["current"]), 32)
        self.assertEqual(report, {"file": path, "key_id": rh.claim_key_id(keys["current"]),
                                  "previous_key_id": None, "ok": True})
        self.assertNotIn(keys["current"].hex(), json.dumps(report))
        # The key id is the library's (the vector of docs/wire-protocol.md).
        self.assertEqual(rh.claim_key_id(bytes(range(32))), "8332")
        # Never overwritten, and no link written through.
        run = self.run_tool("keygen", path)
        self.assertEqual((run.returncode, run.stdout), (3, ""))
        self.assertEqual(run.stderr, "keygen: %s: exists; a key file is never overwritten "
                         "(write a new one and rename it)\n" % path)
        with open(path) as f:
            self.assertEqual(f.read(), text)
        link, aim = os.path.join(folder, "link.key"), os.path.join(folder, "aim")
        os.symlink(aim, link)
        self.assertEqual(self.run_tool("keygen", link).returncode, 3)
        self.assertFalse(os.path.exists(aim))
        # --rotate: a fresh current, the old current as previous.
        rolled = os.path.join(folder, "rolled.key")
        run = self.run_tool("keygen", "--rotate", path, "--owner", "nobody", rolled)
        self.assertEqual(run.returncode, 0, run.stderr)
        new = rh.parse_claim_key_file(open(rolled).read())
        self.assertEqual(new["previous"], keys["current"])
        self.assertNotEqual(new["current"], keys["current"])
        self.assertEqual(run.stdout, "keygen: wrote %s (mode 0600), key id %s, previous key id "
                         "%s\n" % (rolled, rh.claim_key_id(new["current"]),
                                    rh.claim_key_id(keys["current"])))
        if os.geteuid() == 0:
            self.assertEqual(os.lstat(rolled).st_uid, rh.pwd.getpwnam("nobody").pw_uid)
        # An old key file others may read is refused, and nothing is written.
        os.chmod(path, 0o640)
        again = os.path.join(folder, "again.key")
        run = self.run_tool("keygen", "--rotate", path, again)
        self.assertEqual((run.returncode, run.stderr), (3, "keygen: %s: mode 0640 lets others "
                         "in; a key file is 0600 or stricter\n" % path))
        self.assertFalse(os.path.exists(again))
        run = self.run_tool("keygen", "--owner", "no-such-account-here", again)
        self.assertEqual(run.returncode, 2)
        self.assertFalse(os.path.exists(again))

    def test_check(self):
        run = self.run_tool("check", ARGS.lib)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertEqual(run.stdout, "library: %s\nversion: %s\nconn_info_t: 336 bytes (this tool "
                         "and the legacy server: 336)\ncheck: ok\n" % (ARGS.lib, LIB.version()))
        self.assertEqual(run.stderr, "")
        report = self.run_json("check", "--lib", ARGS.lib, code=0)
        self.assertEqual(report, {"library": ARGS.lib, "version": LIB.version(),
                                  "conn_info_size": 336, "expected_conn_info_size": 336,
                                  "missing_exports": [], "ok": True})

    def test_check_refuses_a_mismatched_build(self):
        run = self.run_tool("check", ARGS.fake_abi)
        self.assertEqual(run.returncode, 1)
        self.assertEqual(run.stdout, "library: %s\nversion: 9.9.9-wrong-abi\nconn_info_t: 320 "
                         "bytes (this tool and the legacy server: 336)\ncheck: FAILED\n"
                         % ARGS.fake_abi)
        self.assertIn("MISMATCH", run.stderr)
        self.assertIn("MISSING exports: cmd_get_ticket cmd_validate_ticket cmd_find cmd_fix "
                      "send_validate_ticket_job raida_healing_open", run.stderr)
        report = self.run_json("check", ARGS.fake_abi, code=1)
        self.assertEqual((report["ok"], report["conn_info_size"]), (False, 320))
        self.assertIn("cmd_fix", report["missing_exports"])
        run = self.run_tool("check", "/nonexistent/libraida_healing.so")
        self.assertEqual(run.returncode, 3)
        self.assertIn("cannot load /nonexistent/libraida_healing.so", run.stderr)
        report = self.run_json("check", "/nonexistent/libraida_healing.so", code=3)
        self.assertEqual(report["ok"], False)
        self.assertIn("cannot load /nonexistent/libraida_healing.so", report["error"])

    def test_library_discovery_order(self):
        """--lib, then $RAIDA_HEALING_LIB, then the installed library, then the build tree."""
        tmp = tempfile.mkdtemp(prefix="raida_tool_")
        self.addCleanup(shutil.rmtree, tmp, True)
        with open(TOOL) as f:
            text = f.read()
        self.assertEqual(text.count("\nINSTALLED_LIBRARY = None\n"), 1)
        installed = os.path.join(tmp, "raida-healing")
        with open(installed, "w") as f:
            f.write(text.replace("\nINSTALLED_LIBRARY = None\n",
                                 "\nINSTALLED_LIBRARY = %r\n" % ARGS.fake_abi))
        env = dict(os.environ)
        env.pop("RAIDA_HEALING_LIB", None)
        library = lambda run: run.stdout.splitlines()[0]  # noqa: E731
        run = self.run_tool("check", env=env, tool=installed)
        self.assertEqual((run.returncode, library(run)), (1, "library: " + ARGS.fake_abi))
        run = self.run_tool("check", env=dict(env, RAIDA_HEALING_LIB=ARGS.lib), tool=installed)
        self.assertEqual((run.returncode, library(run)), (0, "library: " + ARGS.lib))
        run = self.run_tool("check", "--lib", ARGS.fake_abi, env=dict(env, RAIDA_HEALING_LIB=ARGS.lib))
        self.assertEqual((run.returncode, library(run)), (1, "library: " + ARGS.fake_abi))
        # no installed path, no variable: the build tree next to tools/, if make built there
        build_tree = os.path.join(ROOT, "target", "release", "libraida_healing.so")
        run = self.run_tool("check", env=env)
        if os.path.exists(build_tree):
            self.assertEqual((run.returncode, library(run)), (0, "library: " + build_tree))
        else:  # CARGO_TARGET_DIR elsewhere: nothing to find
            self.assertEqual(run.returncode, 3)
            self.assertIn("no libraida_healing found", run.stderr)
        # an installed path that no longer exists falls through to the next place
        with open(installed, "w") as f:
            f.write(text.replace("\nINSTALLED_LIBRARY = None\n",
                                 "\nINSTALLED_LIBRARY = '/nonexistent/libraida_healing.so.0'\n"))
        run = self.run_tool("check", env=dict(env, RAIDA_HEALING_LIB=ARGS.lib), tool=installed)
        self.assertEqual(library(run), "library: " + ARGS.lib)

    def test_read(self):
        folder = new_folder(self)
        plant_page(folder, 1, 4, free={5003})
        plant_page(folder, -1, 0)
        env = dict(os.environ, RAIDA_HEALING_LIB=ARGS.lib)
        env.pop("RAIDA_HEALING_LOG", None)
        run = self.run_tool("read", folder, "1:5000", "-1:7", "1:5003", env=env)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(run.stderr, "")
        self.assertEqual(run.stdout.splitlines(), [
            "1:5000         AN %s  MFS   1 (used)" % stored_an(1, 5000).hex(),
            "-1:7           AN %s  MFS   1 (used)" % stored_an(-1, 7).hex(),
            "1:5003         AN %s  MFS   0 (free)" % stored_an(1, 5003).hex(),
        ])
        report = self.run_json("read", folder, "--lib", ARGS.lib, "-1:7", "2:1", code=1)
        self.assertEqual(report, {"folder": folder, "ok": False, "mode": "read-only", "coins": [
            {"coin": "-1:7", "den": -1, "sn": 7, "an": stored_an(-1, 7).hex(), "mfs": 1,
             "used": True},
            {"coin": "2:1", "den": 2, "sn": 1,
             "error": "no page holds denomination 2 serial number 1: no such page file"},
        ]})
        run = self.run_tool("read", folder, "--lib", ARGS.lib, "2:1")
        self.assertEqual(run.returncode, 1)
        self.assertEqual(run.stdout, "2:1            no page (the server answers 40 for this "
                         "coin): no page holds denomination 2 serial number 1: no such page file\n")
        run = self.run_tool("read", folder + "/missing", "--lib", ARGS.lib, "1:1")
        self.assertEqual((run.returncode, run.stdout), (3, ""))
        self.assertIn("cannot open %s/missing/Data: No such file or directory" % folder, run.stderr)
        report = self.run_json("read", folder + "/missing", "--lib", ARGS.lib, "1:1", code=3)
        self.assertEqual(report["ok"], False)
        self.assertIn("No such file or directory", report["error"])
        # --lock: through the library's store, which needs config.toml and takes the lock
        missing = rw.page_path(folder, 2, 0)
        report = self.run_json("read", folder, "--lock", "--lib", ARGS.lib, "-1:7", "2:1", code=1)
        self.assertEqual(report["coins"][1]["error"],
                         "no page holds denomination 2 serial number 1 (no file %s)" % missing)
        self.assertEqual(report["mode"], "lock")
        run = self.run_tool("read", folder + "/missing", "--lock", "--lib", ARGS.lib, "1:1")
        self.assertIn("cannot open %s/missing: RAIDA_HEALING_E_CONFIG (-4)" % folder, run.stderr)

    def test_find(self):
        folder = new_folder(self)
        plant_page(folder, 1, 4, free={5003})
        plant_page(folder, -1, 0)
        an = stored_an(1, 5001).hex()
        env = dict(os.environ)
        env.pop("RAIDA_HEALING_LOG", None)
        # a negative denomination is a coin, with or without `--`
        run = self.run_tool("find", folder, "--lib", ARGS.lib, "1:5000", "1:5001:" + an,
                            "1:5003", "-1:7", env=env)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(run.stderr, "")  # quiet by default
        self.assertEqual(run.stdout.splitlines(), [
            "1:5000         AN %s  MFS   1 (used)" % stored_an(1, 5000).hex(),
            "1:5001         AN %s  MFS   1 (used)  given AN: matches (find 209)" % an,
            "1:5003         AN %s  MFS   0 (free)" % stored_an(1, 5003).hex(),
            "-1:7           AN %s  MFS   1 (used)" % stored_an(-1, 7).hex(),
        ])
        self.assertEqual(self.run_tool("find", folder, "--lib", ARGS.lib, "--", "-1:7").stdout,
                         "-1:7           AN %s  MFS   1 (used)\n" % stored_an(-1, 7).hex())
        run = self.run_tool("find", folder, "--lock", "--lib", ARGS.lib, "1:5001:" + "00" * 16,
                            "2:1", env=dict(env, RAIDA_HEALING_LOG="debug"))
        self.assertEqual(run.returncode, 1)
        self.assertEqual(run.stdout.splitlines()[0],
                         "1:5001         AN %s  MFS   1 (used)  given AN: DIFFERS (find 208)" % an)
        self.assertTrue(run.stdout.splitlines()[1].startswith(
            "2:1            no page (the server answers 40 for this coin)"))
        self.assertIn("raida_healing DEBUG: opened %s as RAIDA 3" % folder, run.stderr)
        report = self.run_json("find", folder, "--lib", ARGS.lib, "1:5001:" + an,
                               "-1:7:" + "00" * 16, code=1)
        self.assertEqual(report["coins"][0], {
            "coin": "1:5001", "den": 1, "sn": 5001, "an": an, "mfs": 1, "used": True,
            "given_an": an, "find_status": 209, "matches": True})
        self.assertEqual((report["coins"][1]["find_status"], report["coins"][1]["matches"]),
                         (208, False))
        # the folder is only read: page files unchanged, no temporary files
        self.assertEqual(sorted(os.listdir(os.path.join(folder, "Data", "01", "00"))),
                         ["0004.bin"])
        run = self.run_tool("find", folder + "/missing", "--lib", ARGS.lib, "1:1")
        self.assertEqual(run.returncode, 3)
        self.assertIn("cannot open %s/missing/Data: No such file or directory" % folder, run.stderr)

    def test_audit_of_a_whole_clean_folder(self):
        folder, _ = full_folder(self)
        run = self.run_tool("audit", folder, "--lib", ARGS.lib)
        self.assertEqual((run.returncode, run.stderr), (0, ""))  # no progress off a terminal
        data = os.path.join(folder, "Data")
        self.assertEqual(run.stdout, "audit of %s: 15000 pages, 15000 valid\n" % data
                         + "pages by denomination (a page holds 1024 serial numbers; ranges are "
                         "page numbers):\n"
                         + "".join("  den %2d (%02x/): all 1000 pages valid\n" % (d, d & 0xFF)
                                   for d in range(-8, 7))
                         + "audit: ok\n")
        report = self.run_json("audit", folder, "--lib", ARGS.lib, code=0)
        self.assertEqual(report, {"folder": folder, "data": data, "pages": 15000,
                                  "valid_pages": 15000, "counts": {}, "problems": [], "ok": True,
                                  "problems_omitted": 0, "details": False,
                                  "denominations": [{"den": d, "valid": [[0, 999]], "missing": [],
                                                     "bad": []} for d in range(-8, 7)]})
        # audit changed nothing and took no lock
        self.assertFalse(os.path.exists(os.path.join(data, ".raida_healing.lock")))
        # read leaves the library's lock file behind, held by nobody: still a clean folder
        self.assertEqual(self.run_tool("read", folder, "--lib", ARGS.lib, "1:1").returncode, 0)
        self.assertFalse(os.path.exists(os.path.join(data, ".raida_healing.lock")))
        self.assertEqual(self.run_tool("read", folder, "--lock", "--lib", ARGS.lib, "1:1").returncode, 0)
        self.assertTrue(os.path.isfile(os.path.join(data, ".raida_healing.lock")))
        self.assertEqual(self.run_json("audit", folder, "--lib", ARGS.lib, code=0)["ok"], True)
        # Data itself may be a link (data on another disk): audited through it, clean
        os.rename(data, data + ".disk")
        os.symlink(data + ".disk", data)
        report = self.run_json("audit", folder, "--lib", ARGS.lib, code=0)
        self.assertEqual((report["valid_pages"], report["problems"]), (15000, []))
        os.unlink(data)
        os.rename(data + ".disk", data)
        # on a terminal it shows progress on stderr
        import pty
        master, slave = pty.openpty()
        chunks = []
        reader = threading.Thread(target=lambda: chunks.extend(iter(
            lambda: _read_or_empty(master), b"")), daemon=True)
        reader.start()
        run = self.run_tool("audit", folder, "--lib", ARGS.lib, stderr=slave,
                            stdout=subprocess.PIPE)
        os.close(slave)
        reader.join(30)
        os.close(master)
        self.assertEqual(run.returncode, 0)
        progress = b"".join(chunks).decode()
        self.assertIn("\raudit: 250/15000 pages checked", progress)
        self.assertIn("\raudit: 15000/15000 pages checked", progress)
        self.assertNotIn("pages checked", run.stdout)

    def test_audit_finds_every_kind_of_problem(self):
        folder, page = full_folder(self)
        data = os.path.join(folder, "Data")
        rel = lambda den, p: os.path.relpath(rw.page_path(folder, den, p), data)  # noqa: E731
        os.unlink(rw.page_path(folder, 1, 1))                           # missing
        replace = lambda den, p, content: (os.unlink(rw.page_path(folder, den, p)),  # noqa: E731
                                           open(rw.page_path(folder, den, p), "wb").write(content))
        replace(1, 2, page[:100])                                   # truncated
        replace(1, 3, page + b"x")                                  # oversized
        os.unlink(rw.page_path(folder, 1, 4))
        os.mkfifo(rw.page_path(folder, 1, 4))                          # not regular (never opened)
        os.unlink(rw.page_path(folder, 1, 5))
        os.symlink(rw.page_path(folder, 1, 6), rw.page_path(folder, 1, 5))  # symlink
        with open(rw.page_path(folder, 1, 7) + ".tmp", "wb") as f:    # stray temporary file
            f.write(page[:10])
        with open(os.path.join(data, "01", "notes.txt"), "w") as f:  # no page
            f.write("x")
        replace(2, 0, page)
        os.chmod(rw.page_path(folder, 2, 0), 0o600)                    # mode differs
        lock = os.path.join(data, ".raida_healing.lock")
        os.symlink(rw.page_path(folder, 1, 6), lock)                   # lock file planted as a link
        expected = [
            {"kind": "missing", "path": rel(1, 1), "detail": "no such page file"},
            {"kind": "truncated", "path": rel(1, 2),
             "detail": "truncated page file: 100 bytes, a page file has 17408"},
            {"kind": "oversized", "path": rel(1, 3),
             "detail": "oversized page file: 17409 bytes, a page file has 17408"},
            {"kind": "not_regular", "path": rel(1, 4),
             "detail": "not a regular file (a FIFO); it is never opened"},
            {"kind": "symlink", "path": rel(1, 5),
             "detail": "a symbolic link below Data/; links there are never followed"},
        ]
        if os.geteuid() == 0:  # only root can give a file to another owner
            replace(2, 1, page)
            os.chown(rw.page_path(folder, 2, 1), 12345, 12345)
        report = self.run_json("audit", folder, "--details", "--lib", ARGS.lib, code=1)
        self.assertEqual(report["problems"][:5], expected)
        self.assertEqual(report["problems_omitted"], 0)
        # without --details the missing page is only in the ranges
        brief = self.run_json("audit", folder, "--lib", ARGS.lib, code=1)
        self.assertEqual(brief["problems"], report["problems"][1:])
        self.assertEqual((brief["problems_omitted"], brief["counts"]), (1, report["counts"]))
        owner = os.stat(data)
        walked = sorted((p["kind"], p["path"], p["detail"]) for p in report["problems"][5:])
        want = [
            ("lock_not_regular", ".raida_healing.lock", "the lock file is not a regular file; "
             "the library refuses the folder"),
            ("mode", rel(2, 0), "mode 0600, expected %04o (Data/ is %04o)"
             % (owner.st_mode & 0o666, owner.st_mode & 0o7777)),
            ("temporary", rel(1, 7) + ".tmp", "a temporary file left by an interrupted write"),
            ("unexpected", os.path.join("01", "notes.txt"), "neither a page file nor a page folder"),
        ]
        if os.geteuid() == 0:
            want.insert(3, ("owner", rel(2, 1), "owner 12345:12345, Data/ has %d:%d"
                            % (owner.st_uid, owner.st_gid)))
        self.assertEqual(walked, sorted(want))
        self.assertEqual(report["valid_pages"], 14995)
        self.assertFalse(report["ok"])
        run = self.run_tool("audit", folder, "--lib", ARGS.lib)
        self.assertEqual(run.returncode, 1)
        lines = run.stdout.splitlines()
        self.assertEqual(lines[0], "audit of %s: 15000 pages, 14995 valid" % data)
        self.assertIn("  truncated    %s: truncated page file: 100 bytes, a page file has 17408"
                      % rel(1, 2), lines)
        # the summary per denomination comes first; missing pages are only in its ranges
        self.assertEqual(lines[1:4], [
            "pages by denomination (a page holds 1024 serial numbers; ranges are page numbers):",
            "  den -8 (f8/): all 1000 pages valid", "  den -7 (f9/): all 1000 pages valid"])
        self.assertEqual(lines[11], "  den  1 (01/): valid 995 (0, 6-999); missing 1 (1); bad 4 (2-5)")
        self.assertEqual(lines[17], "details:")
        self.assertNotIn("  missing      %s: no such page file" % rel(1, 1), lines)
        self.assertTrue(lines[-1].startswith("audit: %d problems (lock_not_regular 1, missing 1, mode 1, "
                                             % (len(want) + 5)), lines[-1])
        # the lock file the library keeps, held by no process, is no problem
        os.unlink(lock)
        open(lock, "w").close()
        report = self.run_json("audit", folder, "--lib", ARGS.lib, code=1)
        self.assertNotIn(".raida_healing.lock", [p["path"] for p in report["problems"]])
        # a lock another process holds: the folder is in use
        holder = subprocess.Popen(
            [sys.executable, "-c", "import fcntl,sys; f=open(sys.argv[1]); "
             "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
             os.path.join(data, ".raida_healing.lock")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(holder.stdout.readline(), "held\n")
            report = self.run_json("audit", folder, "--lib", ARGS.lib, code=1)
        finally:
            holder.stdin.close()
            holder.wait(30)
        self.assertIn({"kind": "lock_held", "path": ".raida_healing.lock", "detail": "a running "
                       "process holds the folder lock: the folder is in use"}, report["problems"])
        # many problems of one kind: the text and JSON list 20, --details all
        for p in range(100, 130):
            os.unlink(rw.page_path(folder, 3, p))
            with open(rw.page_path(folder, 3, p) + ".tmp", "wb") as f:
                f.write(b"x")
        run = self.run_tool("audit", folder, "--lib", ARGS.lib)
        self.assertIn("  den  3 (03/): valid 970 (0-99, 130-999); missing 30 (100-129); bad 0",
                      run.stdout.splitlines())
        self.assertIn("  temporary    ... and 11 more (--details lists all)", run.stdout.splitlines())
        self.assertEqual(sum(1 for line in run.stdout.splitlines()
                             if line.startswith("  temporary    ")), 21)
        brief = self.run_json("audit", folder, "--lib", ARGS.lib, code=1)
        self.assertEqual((brief["counts"]["missing"], brief["counts"]["temporary"]), (31, 31))
        self.assertEqual(sum(1 for p in brief["problems"] if p["kind"] == "temporary"), 20)
        full = self.run_json("audit", folder, "--details", "--lib", ARGS.lib, code=1)
        self.assertEqual(len(full["problems"]), sum(full["counts"].values()))
        self.assertEqual(brief["problems_omitted"], 31 + 11)
        run = self.run_tool("audit", folder, "--details", "--lib", ARGS.lib)
        self.assertEqual(sum(1 for line in run.stdout.splitlines()
                             if line.startswith("  temporary    ")), 31)

    def test_audit_says_a_linked_page_folder_in_one_line(self):
        """A page folder that is a symbolic link (Data/03 on another disk) is one problem,
        not one per page below it; so is one inside it (03/01)."""
        folder, _ = full_folder(self)
        data = os.path.join(folder, "Data")
        os.rename(os.path.join(data, "03"), os.path.join(folder, "elsewhere03"))
        os.symlink(os.path.join(folder, "elsewhere03"), os.path.join(data, "03"))
        os.rename(os.path.join(data, "04", "01"), os.path.join(folder, "elsewhere0401"))
        os.symlink(os.path.join(folder, "elsewhere0401"), os.path.join(data, "04", "01"))
        run = self.run_tool("audit", folder, "--details", "--lib", ARGS.lib)
        self.assertEqual(run.returncode, 1, run.stderr)
        lines = run.stdout.splitlines()
        link = "a symbolic link where a page folder belongs; links below Data/ are never followed"
        self.assertEqual(lines[lines.index("details:") + 1:], [
            "  symlink      03: %s (1000 pages below it unusable)" % link,
            "  symlink      04/01: %s (256 pages below it unusable)" % link,
            "audit: 2 problems (symlink 2)"])
        self.assertIn("  den  3 (03/): valid 0; missing 0; bad 1000 (0-999)", lines)
        self.assertIn("  den  4 (04/): valid 744 (0-255, 512-999); missing 0; bad 256 (256-511)", lines)
        report = self.run_json("audit", folder, "--lib", ARGS.lib, code=1)
        self.assertEqual(report["problems"], [
            {"kind": "symlink", "path": "03", "detail": link + " (1000 pages below it unusable)"},
            {"kind": "symlink", "path": os.path.join("04", "01"),
             "detail": link + " (256 pages below it unusable)"}])
        self.assertEqual((report["valid_pages"], report["problems_omitted"]), (15000 - 1256, 0))

    def test_audit_says_an_unreadable_page_folder_in_one_line(self):
        """A page folder the tool may not open (Data/03 mode 000, and 04/01) is one problem
        that says how many pages it takes, not one per page (its mode is one more). Root reads any folder, so as
        root the tool runs without the capabilities that let it (setpriv drops
        dac_override and dac_read_search; root then obeys the mode bits like anyone)."""
        folder, _ = full_folder(self)
        data = os.path.join(folder, "Data")
        for rel in ("03", os.path.join("04", "01")):
            os.chmod(os.path.join(data, rel), 0)
            self.addCleanup(os.chmod, os.path.join(data, rel), 0o755)
        as_anyone = []
        if os.geteuid() == 0:
            as_anyone = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
        env = dict(os.environ)
        env.pop("RAIDA_HEALING_LIB", None)

        def audit(*extra):
            return subprocess.run(as_anyone + [sys.executable, TOOL, "audit", folder, "--lib",
                                               ARGS.lib] + list(extra),
                                  capture_output=True, text=True, timeout=120, env=env)

        run = audit("--details")
        self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
        lines = run.stdout.splitlines()
        denied = "cannot open the folder: Permission denied"
        mode = "mode 0000, expected 0755 (Data/ is 0755)"
        self.assertEqual(lines[lines.index("details:") + 1:], [
            "  mode         03: %s" % mode,
            "  mode         04/01: %s" % mode,
            "  unreadable   03: %s (1000 pages below it unusable)" % denied,
            "  unreadable   04/01: %s (256 pages below it unusable)" % denied,
            "audit: 4 problems (mode 2, unreadable 2)"])
        self.assertIn("  den  3 (03/): valid 0; missing 0; bad 1000 (0-999)", lines)
        self.assertIn("  den  4 (04/): valid 744 (0-255, 512-999); missing 0; bad 256 (256-511)", lines)
        run = audit("--json")
        self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
        report = json.loads(run.stdout)
        self.assertEqual(report["problems"], [
            {"kind": "mode", "path": "03", "detail": mode},
            {"kind": "mode", "path": os.path.join("04", "01"), "detail": mode},
            {"kind": "unreadable", "path": "03", "detail": denied + " (1000 pages below it unusable)"},
            {"kind": "unreadable", "path": os.path.join("04", "01"),
             "detail": denied + " (256 pages below it unusable)"}])
        self.assertEqual((report["valid_pages"], report["problems_omitted"]), (15000 - 1256, 0))

    def test_read_and_find_work_on_a_read_only_copy_and_create_nothing(self):
        """read and find are read-only by default: on a folder mounted read-only (a private
        mount namespace) they answer exactly, create no lock file and change nothing;
        --lock goes through the library's store, whose lock file cannot be created there,
        and says so naming the lock file, never a page file."""
        folder = new_folder(self)
        plant_page(folder, 1, 4, free={5003})
        an = stored_an(1, 5001).hex()
        before = {n: os.stat(os.path.join(folder, "Data", "01", "00", n)).st_mtime_ns
                  for n in os.listdir(os.path.join(folder, "Data", "01", "00"))}
        unshare = ["unshare", "--mount", "--propagation", "private"]
        if os.geteuid() != 0:
            unshare.append("--map-root-user")
        script = ('mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" && shift && '
                  'touch "$0/Data/probe" 2>/dev/null && echo WRITABLE; exec "$@"')
        env = dict(os.environ, RAIDA_HEALING_LIB=ARGS.lib)
        env.pop("RAIDA_HEALING_LOG", None)

        def in_read_only(*tool_args):
            return subprocess.run(unshare + ["sh", "-c", script, folder, folder, sys.executable,
                                             TOOL] + list(tool_args),
                                  capture_output=True, text=True, env=env, timeout=120)
        run = in_read_only("read", folder, "1:5000", "1:5003")
        self.assertNotIn("WRITABLE", run.stdout)
        self.assertEqual((run.returncode, run.stderr), (0, ""))
        self.assertEqual(run.stdout.splitlines(), [
            "1:5000         AN %s  MFS   1 (used)" % stored_an(1, 5000).hex(),
            "1:5003         AN %s  MFS   0 (free)" % stored_an(1, 5003).hex()])
        run = in_read_only("find", folder, "1:5001:" + an, "1:5002:" + "00" * 16)
        self.assertEqual(run.returncode, 1, run.stderr)
        self.assertEqual(run.stdout.splitlines(), [
            "1:5001         AN %s  MFS   1 (used)  given AN: matches (find 209)" % an,
            "1:5002         AN %s  MFS   1 (used)  given AN: DIFFERS (find 208)"
            % stored_an(1, 5002).hex()])
        run = in_read_only("read", "--lock", folder, "1:5000")
        self.assertEqual(run.returncode, 3)
        self.assertIn("%s/Data/.raida_healing.lock: cannot create or open the folder lock file: "
                      "Read-only file system" % folder, run.stderr)
        self.assertNotIn("page file", run.stderr)
        self.assertEqual(sorted(os.listdir(os.path.join(folder, "Data"))), ["01"])
        self.assertEqual(before, {n: os.stat(os.path.join(folder, "Data", "01", "00", n)).st_mtime_ns
                                  for n in os.listdir(os.path.join(folder, "Data", "01", "00"))})
        # read-only mode uses the library's page rule: a truncated page is no page, in its words
        with open(rw.page_path(folder, 1, 4), "r+b") as f:
            f.truncate(100)
        run = self.run_tool("read", folder, "1:5000", env=env)
        self.assertEqual((run.returncode, run.stdout), (1, "1:5000         no page (the server "
                         "answers 40 for this coin): no page holds denomination 1 serial number "
                         "5000: truncated page file: 100 bytes, a page file has 17408\n"))

    def test_audit_escapes_names_and_walks_any_depth(self):
        """A file name with a line break and escape bytes cannot forge a report line or reach
        the terminal; a tree 1,000 folders deep is walked (no recursion limit) and reported."""
        folder, _ = full_folder(self)
        data = os.path.join(folder, "Data")
        forged = "x\naudit: ok\n\x1b[2J\x1b]0;title\x07"
        open(os.path.join(data, "01", forged), "w").close()
        open(os.fsdecode(os.path.join(os.fsencode(data), b"bad-\xff")), "w").close()
        def remove_deep():  # shutil.rmtree recurses: take the tree down from its bottom
            fds = [os.open(data, os.O_RDONLY)]
            while True:
                try:
                    fds.append(os.open("d", os.O_RDONLY, dir_fd=fds[-1]))
                except FileNotFoundError:
                    break
            os.close(fds.pop())
            while fds:
                os.rmdir("d", dir_fd=fds[-1])
                os.close(fds.pop())
        self.addCleanup(remove_deep)
        fd = os.open(data, os.O_RDONLY)
        for _ in range(1000):
            os.mkdir("d", dir_fd=fd)
            deeper = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = deeper
        os.close(fd)
        env = dict(os.environ, RAIDA_HEALING_LIB=ARGS.lib)
        run = self.run_tool("audit", folder, env=env)
        self.assertEqual(run.returncode, 1, run.stderr)
        self.assertNotIn("\x1b", run.stdout)
        self.assertEqual([line for line in run.stdout.splitlines() if line.startswith("audit:")],
                         ["audit: 1002 problems (unexpected 1002)"])
        self.assertIn("  unexpected   01/x\\x0aaudit: ok\\x0a\\x1b[2J\\x1b]0;title\\x07: "
                      "neither a page file nor a page folder", run.stdout.splitlines())
        self.assertIn("  unexpected   bad-\\xff: neither a page file nor a page folder",
                      run.stdout.splitlines())
        report = self.run_json("audit", folder, "--details", "--lib", ARGS.lib, code=1)
        paths = {p["path"] for p in report["problems"]}
        self.assertIn(os.path.join("01", forged), paths)  # JSON carries the name itself
        self.assertIn("/".join(["d"] * 1000), paths)
        self.assertEqual(report["counts"], {"unexpected": 1002})

    def test_the_module_imports_and_the_command_is_its_main(self):
        """Ops scripts import raida_healing; the command is main() of the same module."""
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "tools"), RAIDA_HEALING_LIB=ARGS.lib)
        run = subprocess.run([sys.executable, "-c", "import raida_healing, sys; "
                              "sys.exit(raida_healing.main(['check']))"],
                             capture_output=True, text=True, env=env, cwd="/")
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(run.stdout.splitlines()[-1], "check: ok")

    def test_audit_cannot_open(self):
        folder = new_folder(self)
        os.rmdir(os.path.join(folder, "Data"))
        run = self.run_tool("audit", folder, "--lib", ARGS.lib)
        self.assertEqual((run.returncode, run.stdout), (3, ""))
        self.assertEqual(run.stderr, "cannot open %s/Data: No such file or directory\n" % folder)
        report = self.run_json("audit", folder, "--lib", ARGS.lib, code=3)
        self.assertEqual(report, {"ok": False, "error": "cannot open %s/Data: No such file or "
                                  "directory" % folder})
        run = self.run_tool("audit", folder, "--lib", "/nonexistent.so")
        self.assertEqual(run.returncode, 3)

    def test_check_page_export(self):
        """The library's page rule through ctypes: codes, paths, texts, bad arguments."""
        folder = new_folder(self)
        plant_page(folder, 1, 300)
        self.assertEqual(LIB.page_count(), 15000)
        index = (1 + 8) * 1000 + 300
        self.assertEqual(LIB.check_page(folder, index), (0, "01/01/012c.bin", ""))
        self.assertEqual(LIB.check_page(folder, 0), (1, "f8/00/0000.bin", "no such page file"))
        self.assertEqual(LIB.check_page(folder, 15000)[0], rh.E_ARGUMENT)
        code, path, why = LIB.check_page(folder + "/nope", 0)
        self.assertEqual((code, path), (rh.E_DATA, ""))
        self.assertTrue(why.startswith("%s/nope/Data: cannot open the folder: " % folder), why)


def _read_or_empty(fd):
    try:
        return os.read(fd, 4096)
    except OSError:  # EIO once the terminal's last writer closed it
        return b""


def main():
    global ARGS, LIB
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lib", required=True)
    parser.add_argument("--host-present", required=True)
    parser.add_argument("--fake-abi", required=True)
    ARGS, rest = parser.parse_known_args()
    ARGS.lib = os.path.abspath(ARGS.lib)
    ARGS.host_present = os.path.abspath(ARGS.host_present)
    ARGS.fake_abi = os.path.abspath(ARGS.fake_abi)
    LIB = rh.Library(ARGS.lib)
    return tally.run([sys.argv[0]] + rest)


if __name__ == "__main__":
    sys.exit(main())
