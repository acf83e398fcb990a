"""The Python test kit: the legacy RAIDA wire (encryption type 0), standard library only.

Every Python test and script imports this one module for the wire and its fakes: request
and response framing, the CRC challenge, coin records and payloads, the peer
validate_ticket request a fixing server sends, page files, the status names (read from
include/raida_healing.h by header_statuses()), fake peers (honest ticket tables, stalled,
vote-stuffing liars, a legacy RAIDA that only checks the challenge's CRC), the claim tag and
claim key files (an implementation of its own of docs/wire-protocol.md's construction) and
the small check/run helpers of the script-style tests. Users:
netlab.py, wallet.py, demo.py, delayproxy.py, test_network.py, test_wan.py,
c_tests/test_dlopen.py and tools/tests/test_standalone.py. The installed ops tool
(tools/raida_healing.py) cannot import test code; test_standalone.py checks its own
framing and tables against this module.

Requests: a 32-byte header, then a body of a 16-byte challenge (12 bytes and their CRC-32,
big-endian), the command's payload and the trailer 3E 3E. Responses: a 32-byte header
(RAIDA index, shard, status, group, 00 01, echo bytes, 0, 24-bit body size, execution time
in microseconds, the challenge echoed), then the body, which ends with 3E 3E.
See docs/wire-protocol.md ("Request framing") and docs/node.md.
"""

import hashlib
import hmac
import os
import re
import socket
import sys
import threading
import time
import zlib
from dataclasses import dataclass

HEADER_BYTES = 32
TRAILER = b"\x3e\x3e"
TOTAL_RAIDA = 25
RECORDS_PER_PAGE = 1024
RECORD_BYTES = 17
PAGE_BYTES = RECORDS_PER_PAGE * RECORD_BYTES

# The node's own framing statuses (docs/node.md): the node's, not the library's.
INVALID_CLOUD_ID, INVALID_COMMAND_GROUP, INVALID_COMMAND, INVALID_COIN_ID = 1, 5, 6, 7
INVALID_EOF, INVALID_ENCRYPTION, INVALID_CRC = 33, 34, 37
FRAMING_STATUS_NAMES = {
    1: "invalid cloud id", 2: "invalid split id", 4: "invalid shard", 5: "invalid group",
    6: "invalid command", 7: "invalid coin id", 33: "invalid trailer",
    34: "invalid encryption", 37: "invalid crc",
}

HEADER_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
                           "include", "raida_healing.h")


def header_numbers(pattern, what, path=HEADER_PATH):
    """{name: number} of every match of `pattern` (groups: name, number) in the library's
    header; a header with none is an error naming `what`."""
    with open(path, encoding="utf-8") as f:
        found = {name: int(number) for name, number in re.findall(pattern, f.read(), re.MULTILINE)}
    if not found:
        raise ValueError("%s has no %s" % (path, what))
    return found


def header_statuses(path=HEADER_PATH):
    """{name: code} of the RAIDA_STATUS_<name> macros, which cbindgen generates from the one
    status list (src/protocol.rs)."""
    return header_numbers(r"^#define RAIDA_STATUS_(\w+) (\d+)$", "RAIDA_STATUS_* macro", path)


def header_commands(path=HEADER_PATH):
    """{handler name: command byte} of the RAIDA_HEALING_COMMANDS list, which build.rs
    generates from the library's command table (src/commands/table.rs)."""
    return header_numbers(r"^  X\((?=\d+, (cmd_\w+)\))(\d+)", "command", path)


# The healing statuses, read from the header rather than restated (a name the header
# lacks is a KeyError at import).
HEALING_STATUSES = header_statuses()
ALL_PASS, ALL_FAIL, MIXED, SUCCESS = (HEALING_STATUSES[n] for n in
                                      ("ALL_PASS", "ALL_FAIL", "MIXED", "SUCCESS"))
FIND_NEITHER, FIND_ALL_AN, FIND_ALL_PAN, FIND_MIXED = (HEALING_STATUSES[n] for n in (
    "FIND_NEITHER", "FIND_ALL_AN", "FIND_ALL_PAN", "FIND_MIXED"))
INVALID_PACKET_LENGTH, WRONG_RAIDA = (HEALING_STATUSES[n] for n in
                                      ("INVALID_PACKET_LENGTH", "WRONG_RAIDA"))
INVALID_SN_OR_DENOMINATION, NO_TICKET_FOUND, TICKET_CLAIMED_ALREADY = (
    HEALING_STATUSES[n] for n in
    ("INVALID_SN_OR_DENOMINATION", "NO_TICKET_FOUND", "TICKET_CLAIMED_ALREADY"))


# The healing commands (group 2), read from the header too.
GROUP_HEALING = 2
HANDLERS = header_commands()
CMD_GET_TICKET, CMD_VALIDATE_TICKET, CMD_FIND, CMD_FIX = (HANDLERS[n] for n in (
    "cmd_get_ticket", "cmd_validate_ticket", "cmd_find", "cmd_fix"))

STATUS_NAMES = dict(FRAMING_STATUS_NAMES)
STATUS_NAMES.update((code, name.lower().replace("_", " "))
                    for name, code in HEALING_STATUSES.items())


def status_name(status):
    return STATUS_NAMES.get(status, "status %d" % status)


def crc32(data):
    return zlib.crc32(data) & 0xFFFFFFFF


def new_challenge(twelve=None):
    """16 challenge bytes: 12 (random unless given) and their CRC-32, big-endian."""
    twelve = os.urandom(12) if twelve is None else bytes(twelve)
    if len(twelve) != 12:
        raise ValueError("a challenge starts with 12 bytes")
    return twelve + crc32(twelve).to_bytes(4, "big")


def header(raida, command, body_len, coin_id, *, group=GROUP_HEALING, shard=0,
           encryption=0, echo=b"\x00\x00", cloud=1, split=0):
    """The 32-byte legacy request header."""
    h = bytearray(HEADER_BYTES)
    h[0], h[1], h[2], h[3], h[4], h[5] = cloud, split, raida, shard, group, command
    h[6:8] = coin_id.to_bytes(2, "big")
    h[8] = 1
    h[16] = encryption
    h[22:24] = body_len.to_bytes(2, "big")
    h[30:32] = echo
    return bytes(h)


def request(raida, command, payload, coin_id, *, challenge=None, **header_fields):
    """A whole type-0 request: header, challenge, payload, trailer."""
    challenge = new_challenge() if challenge is None else challenge
    body = challenge + payload + TRAILER
    return header(raida, command, len(body), coin_id, **header_fields) + body


@dataclass
class Response:
    raida: int
    status: int
    group: int
    echo: bytes
    body_size: int
    exec_micros: int
    challenge: bytes
    body: bytes = b""  # without the trailer
    raw_header: bytes = b""
    seconds: float = 0.0  # wall time the exchange took, measured by the client

    @property
    def name(self):
        return status_name(self.status)


class WireError(Exception):
    """The peer closed, timed out or answered something that is not a legacy response."""


def recv_exactly(sock, n):
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def parse_response_header(raw):
    if len(raw) != HEADER_BYTES:
        raise WireError("response header of %d bytes" % len(raw))
    if raw[4:6] != b"\x00\x01" or raw[8] != 0:
        raise WireError("response header bytes 4-5/8 are %s/%02x" % (raw[4:6].hex(), raw[8]))
    return Response(raida=raw[0], status=raw[2], group=raw[3], echo=raw[6:8],
                    body_size=int.from_bytes(raw[9:12], "big"),
                    exec_micros=int.from_bytes(raw[12:16], "big"), challenge=raw[16:32],
                    raw_header=raw)


def exchange(addr, data, *, timeout=20.0, half_close=False, expect_challenge=None,
             source=None):
    """Sends data to addr (host, port), reads one response. With half_close the client
    shuts down its sending side after data (a truncated request then ends for the node).
    expect_challenge: when given, the echoed challenge must equal it. source: the local
    address to connect from (default: the kernel's choice)."""
    started = time.monotonic()
    bind = None if source is None else (source, 0)
    with socket.create_connection(addr, timeout=timeout, source_address=bind) as sock:
        sock.settimeout(timeout)
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        resp = parse_response_header(recv_exactly(sock, HEADER_BYTES))
        if resp.body_size:
            if resp.body_size < 2:
                raise WireError("body size %d" % resp.body_size)
            body = recv_exactly(sock, resp.body_size)
            if len(body) != resp.body_size or body[-2:] != TRAILER:
                raise WireError("body of %d/%d bytes, trailer %s" % (
                    len(body), resp.body_size, body[-2:].hex()))
            resp.body = body[:-2]
        rest = sock.recv(1)
        if rest:
            raise WireError("bytes after the response body")
    resp.seconds = time.monotonic() - started
    if expect_challenge is not None and resp.challenge != expect_challenge:
        raise WireError("challenge not echoed")
    return resp


def call(addr, raida, command, payload, coin_id, *, timeout=20.0, challenge=None,
         source=None):
    """One healing request to RAIDA `raida` at addr (a fresh random challenge unless
    given; from `source` if given); checks the response's RAIDA index and challenge echo,
    and returns the Response."""
    challenge = new_challenge() if challenge is None else challenge
    data = request(raida, command, payload, coin_id, challenge=challenge)
    resp = exchange(addr, data, timeout=timeout, expect_challenge=challenge, source=source)
    if resp.raida != raida:
        raise WireError("RAIDA %d answered as RAIDA %d" % (raida, resp.raida))
    if resp.group != GROUP_HEALING:
        raise WireError("response group %d" % resp.group)
    return resp


# ---- payloads ----

def coin_bytes(den, sn):
    return (den & 0xFF).to_bytes(1, "big") + sn.to_bytes(4, "big")


def get_ticket_payload(coins):
    """coins: [(den, sn, an)]"""
    return b"".join(coin_bytes(d, s) + an for d, s, an in coins)


def find_payload(coins):
    """coins: [(den, sn, an, pan)]"""
    return b"".join(coin_bytes(d, s) + an + pan for d, s, an, pan in coins)


def fix_payload(coins, pg, tickets):
    """coins: [(den, sn)]; tickets: 25 ids (0 = none)."""
    if len(pg) != 16 or len(tickets) != TOTAL_RAIDA:
        raise ValueError("PG must be 16 bytes and tickets 25 ids")
    return (b"".join(coin_bytes(d, s) for d, s in coins) + pg
            + b"".join(t.to_bytes(4, "big") for t in tickets))


def validate_payload(claimer, ticket):
    return bytes([claimer]) + ticket.to_bytes(4, "big")


# A fixing server's validate_ticket request to a peer: header, challenge, claimer, ticket,
# trailer (docs/wire-protocol.md, "The peer exchange").
VALIDATE_REQUEST_BYTES = HEADER_BYTES + 16 + 5 + 2


def validate_request_header(raida, coin_id):
    """The exact header a fixing server sends peer `raida` with a validate_ticket."""
    return header(raida, CMD_VALIDATE_TICKET, VALIDATE_REQUEST_BYTES - HEADER_BYTES, coin_id)


def validate_request_of(head, body):
    """(claimer, ticket) of a validate_ticket request, or None for any other request."""
    if head[5] != CMD_VALIDATE_TICKET or len(body) != VALIDATE_REQUEST_BYTES - HEADER_BYTES:
        return None
    return body[16], int.from_bytes(body[17:21], "big")


# ---- authenticated claims (docs/wire-protocol.md, "The challenge of an authenticated claim") ----

CLAIM_WINDOW_SECONDS = 60


def claim_key_id(key):
    """A claim key's public id: HMAC-SHA-256(key, label)[0:2]."""
    return hmac.new(key, b"raida-healing claim key id v1", hashlib.sha256).digest()[:2]


def claim_challenge(key, claimer, peer, coin_id, ticket, unix_seconds=None):
    """The 16 challenge bytes of a claim tagged with `key`: key id, window byte, 9 bytes
    of HMAC-SHA-256 over the label, claimer, peer, coin id, ticket and window, then the
    CRC-32 of those 12 bytes."""
    window = int(time.time() if unix_seconds is None else unix_seconds) // CLAIM_WINDOW_SECONDS
    message = (b"raida-healing claim v1" + bytes([claimer, peer, coin_id]) +
               ticket.to_bytes(4, "big") + window.to_bytes(8, "big"))
    tag = hmac.new(key, message, hashlib.sha256).digest()[:9]
    return new_challenge(claim_key_id(key) + bytes([window & 0xFF]) + tag)


def write_claim_key_file(path, current, previous=None, mode=0o600):
    """A claim key file as `raida-healing keygen` writes it (mode as given)."""
    text = "# test claim key\ncurrent = %s\n" % current.hex()
    if previous is not None:
        text += "previous = %s\n" % previous.hex()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def response(raida, status, head, challenge, payload=None):
    """A well-formed legacy response to a request with header `head`: RAIDA index, status,
    the request's group and echo bytes, the challenge echoed; payload None: no body, else
    the payload and the trailer."""
    body = b"" if payload is None else payload + TRAILER
    resp = bytearray(HEADER_BYTES)
    resp[0], resp[2], resp[3], resp[5] = raida, status, head[4], 1
    resp[6:8] = head[30:32]
    resp[9:12] = len(body).to_bytes(3, "big")
    resp[16:32] = challenge
    return bytes(resp) + body


def passed_bits(status, body, n):
    """Which of n coins passed, from a 241/242/243 answer (243: bitfield first)."""
    if status == ALL_PASS:
        return [True] * n
    if status == MIXED:
        return [bool(body[i // 8] >> (i % 8) & 1) for i in range(n)]
    return [False] * n


def ticket_of(status, body, n):
    """The ticket id of a get_ticket answer for n coins (0 when none was issued)."""
    if status == ALL_PASS and len(body) == 4:
        return int.from_bytes(body, "big")
    if status == MIXED and len(body) == (n + 7) // 8 + 4:
        return int.from_bytes(body[-4:], "big")
    return 0


def derive_an(raida, den, sn, pg, encryption_type=0):
    """The AN a fix writes: MD5(raida_no, den, sn, PG) for encryption types 0-3, the first
    16 bytes of SHA-256 of the same for the modern types."""
    data = bytes([raida, den & 0xFF]) + sn.to_bytes(4, "big") + pg
    if encryption_type < 4:
        return hashlib.md5(data).digest()
    return hashlib.sha256(data).digest()[:16]


# ---- page files (docs/abi.md "Page files on disk") ----

def page_path(folder, den, page_no):
    return os.path.join(folder, "Data", "%02x" % (den & 0xFF), "%02x" % (page_no >> 8),
                        "%04x.bin" % page_no)


def read_record(folder, den, sn):
    """(AN, MFS) of sn from its page file, or None when the page file is missing."""
    path = page_path(folder, den, sn // RECORDS_PER_PAGE)
    try:
        with open(path, "rb") as f:
            page = f.read()
    except FileNotFoundError:
        return None
    if len(page) != PAGE_BYTES:
        raise ValueError("%s has %d bytes" % (path, len(page)))
    return record_in(page, sn)


def record_in(page, sn):
    """(AN, MFS) of sn in the bytes of its page."""
    at = (sn % RECORDS_PER_PAGE) * RECORD_BYTES
    return page[at:at + 16], page[at + 16]


def write_record(folder, den, sn, an, mfs):
    """Sets sn's record in its page file, creating a zeroed page when there is none."""
    path = page_path(folder, den, sn // RECORDS_PER_PAGE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(path, "rb") as f:
            page = bytearray(f.read())
    except FileNotFoundError:
        page = bytearray(PAGE_BYTES)
    at = (sn % RECORDS_PER_PAGE) * RECORD_BYTES
    page[at:at + 16] = an
    page[at + 16] = mfs
    with open(path, "wb") as f:
        f.write(page)



# ---- fake peers: in-process RAIDA listeners (docs/wire-protocol.md) ----

class FakePeer:
    """A fake RAIDA in this process: a listener on 127.0.0.1 (a free port unless given)
    and a thread per client. Subclasses answer in handle(); every complete request is
    recorded as (header, body) in `requests`."""

    def __init__(self, raida, port=0):
        self.raida = raida
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self.connections = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.clients = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.clients.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.settimeout(30)
            head = recv_exactly(conn, HEADER_BYTES)
            if len(head) < HEADER_BYTES:
                return
            body_size = int.from_bytes(head[22:24], "big")
            body = recv_exactly(conn, body_size)
            if len(body) < body_size:
                return
            with self.lock:
                self.requests.append((head, body))
            self.handle(conn, head, body)
        except OSError:
            pass

    def handle(self, conn, head, body):
        raise NotImplementedError

    def answer(self, conn, head, body, status, payload=None):
        """Sends response() to (head, body) and closes the connection."""
        conn.sendall(response(self.raida, status, head, body[:16], payload))
        conn.close()

    def validate_requests(self):
        """(claimer, ticket) of every validate_ticket request received."""
        with self.lock:
            found = [validate_request_of(h, b) for h, b in self.requests]
        return [claim for claim in found if claim is not None]

    def close(self):
        self.stopped.set()
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            for c in self.clients:
                try:
                    c.close()
                except OSError:
                    pass


def claim_answer(claimed, ticket, claimer, listing):
    """A fake peer's validate_ticket answer, (status, listing): 43 for an unknown ticket
    (listing None), 44 when `claimer` claimed it before, else 250 with the listing, and the
    claim recorded in `claimed` (a set of (ticket, claimer))."""
    if listing is None:
        return NO_TICKET_FOUND, None
    if (ticket, claimer) in claimed:
        return TICKET_CLAIMED_ALREADY, None
    claimed.add((ticket, claimer))
    return SUCCESS, listing


class TicketPeer(FakePeer):
    """An honest peer's validate_ticket side: 250 and the coins of the ticket (once per
    claimer, then 44), 43 for an unknown ticket; `answers`: ticket -> [(den, sn)]
    (repeats allowed)."""

    def __init__(self, raida, answers, port=0):
        self.answers = answers
        self.claimed = set()
        super().__init__(raida, port)

    def handle(self, conn, head, body):
        claimer, ticket = body[16], int.from_bytes(body[17:21], "big")
        with self.lock:
            coins = self.answers.get(ticket)
            listing = None if coins is None else b"".join(coin_bytes(d, s) for d, s in coins)
            status, listing = claim_answer(self.claimed, ticket, claimer, listing)
        self.answer(conn, head, body, status, listing)


class TicketPeers:
    """A TicketPeer for every RAIDA index but `me`; answers[i] is peer i's ticket table."""

    def __init__(self, answers, me):
        self.peers = {i: TicketPeer(i, answers.get(i, {})) for i in range(TOTAL_RAIDA) if i != me}

    def servers(self):
        """raida_servers entries; `me` gets a port nobody listens on (never contacted)."""
        return ["127.0.0.1:%d" % (self.peers[i].port if i in self.peers else 1)
                for i in range(TOTAL_RAIDA)]

    def close(self):
        for peer in self.peers.values():
            peer.close()


class LegacyPeer(FakePeer):
    """A RAIDA running the legacy C module, as far as healing's voters go: get_ticket
    checks the ANs it holds (`ans`: (den, sn) -> AN) and issues a random ticket;
    validate_ticket checks only the challenge's CRC (37 when wrong) and whatever its 12
    bytes are, echoes all 16 and answers 250 with the ticket's coins once per claimer (44
    after, 43 for an unknown ticket). It never reads a tag."""

    def __init__(self, raida, ans, port=0):
        self.ans = dict(ans)
        self.tickets = {}
        self.claimed = set()
        super().__init__(raida, port)

    def handle(self, conn, head, body):
        challenge = body[:16]
        if crc32(challenge[:12]).to_bytes(4, "big") != challenge[12:]:
            self.answer(conn, head, body, INVALID_CRC)
            return
        payload = body[16:-2]
        if head[5] == CMD_GET_TICKET:
            records = [payload[i:i + 21] for i in range(0, len(payload), 21)]
            passed = [r[:5] for r in records
                      if self.ans.get((int.from_bytes(r[:1], "big", signed=True),
                                       int.from_bytes(r[1:5], "big"))) == r[5:21]]
            if len(passed) != len(records) or not passed:
                self.answer(conn, head, body, ALL_FAIL)
                return
            ticket = int.from_bytes(os.urandom(4), "big") | 1
            with self.lock:
                self.tickets[ticket] = b"".join(passed)
            self.answer(conn, head, body, ALL_PASS, ticket.to_bytes(4, "big"))
        elif head[5] == CMD_VALIDATE_TICKET:
            claimer, ticket = payload[0], int.from_bytes(payload[1:5], "big")
            with self.lock:
                status, listing = claim_answer(self.claimed, ticket, claimer,
                                               self.tickets.get(ticket))
            self.answer(conn, head, body, status, listing)
        else:
            self.answer(conn, head, body, INVALID_COMMAND)


class StallingPeer(FakePeer):
    """Hands out a ticket to get_ticket like a healthy RAIDA, then accepts every later
    connection and never answers it (a hung server behind a live listener)."""

    def __init__(self, raida, port=0, ticket=0x5A5A0001):
        self.ticket = ticket
        super().__init__(raida, port)

    def handle(self, conn, head, body):
        if head[5] == CMD_GET_TICKET:
            self.answer(conn, head, body, ALL_PASS, self.ticket.to_bytes(4, "big"))
            return
        self.stopped.wait()  # hold the connection open, silent, until the fake stops


class ListingLiar(FakePeer):
    """Answers every validate_ticket with 250 and a body listing one coin `times` times,
    framed correctly (its index, the challenge echoed): the legacy vote-stuffing attack."""

    def __init__(self, raida, den, sn, times=20):
        self.listing = coin_bytes(den, sn) * times
        super().__init__(raida)

    def handle(self, conn, head, body):
        if head[5] == CMD_VALIDATE_TICKET:
            self.answer(conn, head, body, SUCCESS, self.listing)
        else:
            self.answer(conn, head, body, INVALID_COMMAND)


# ---- the script-style tests' checks (tools/tests/tally.py runs them) ----

def check(cond, what):
    if not cond:
        raise AssertionError(what)


def check_eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))
