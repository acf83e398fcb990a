#!/usr/bin/env python3
"""Writes the seed corpus in fuzz/corpus/<target>/ (committed; rerun after changing the
input layout described in fuzz/src/lib.rs and fuzz/src/peer.rs).

Each command seed is: a type selector byte (index into TYPES = 0, 1, 2, 4, 5; 0xFF = NULL
body), a flags byte, then the request body as the server hands it to the handler. The model
world (fuzz/src/model.rs): denomination 3 has no pages, pages 0..7 exist for the others,
and a coin's stored AN is its 5-byte wire record repeated to 16 bytes.
"""

import hashlib
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
TYPES = [0, 1, 2, 4, 5]


def coin(den, sn):
    return struct.pack(">bI", den, sn)


def stored_an(den, sn):
    w = coin(den, sn)
    return bytes(w[i % 5] for i in range(16))


def legacy(payload, challenge=bytes(range(12))):
    return challenge + struct.pack(">I", zlib.crc32(challenge)) + payload + b"\x3e\x3e"


def modern(payload):
    return payload + b"\xa5" * 32 + b"\x3e\x3e"


def framed(type_index, payload):
    return legacy(payload) if TYPES[type_index] < 4 else modern(payload)


def write(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def commands():
    good = [(1, 5), (1, 1030), (-8, 8191), (6, 0), (0, 2047)]
    for t in range(len(TYPES)):
        tag = f"type{TYPES[t]}"
        seed = lambda payload, flags=0: bytes([t, flags]) + framed(t, payload)

        # get_ticket: den, sn, AN
        gt = lambda coins: b"".join(coin(d, s) + an for d, s, an in coins)
        passing = [(d, s, stored_an(d, s)) for d, s in good]
        write("get_ticket", f"{tag}-all-pass", seed(gt(passing)))
        mixed = passing[:2] + [(1, 6, b"\x00" * 16)] + passing[2:]
        write("get_ticket", f"{tag}-mixed", seed(gt(mixed)))
        write("get_ticket", f"{tag}-mixed-pool-full", seed(gt(mixed), 1))
        write("get_ticket", f"{tag}-all-fail", seed(gt([(1, 7, b"\x11" * 16)])))
        write("get_ticket", f"{tag}-den-without-pages", seed(gt(passing + [(3, 1, stored_an(3, 1))])))
        write("get_ticket", f"{tag}-page-missing", seed(gt([(1, 9000, stored_an(1, 9000))] + passing)))
        write("get_ticket", f"{tag}-bad-den", seed(gt([(7, 1, stored_an(7, 1))])))
        write("get_ticket", f"{tag}-short", seed(gt(passing)[:20]))
        write("get_ticket", f"{tag}-not-div", seed(gt(passing) + b"\x01"))
        many = [(d, (s * 37 + k * 101) % 8192, stored_an(d, (s * 37 + k * 101) % 8192))
                for k in range(40) for d, s in good[:3]]
        write("get_ticket", f"{tag}-120-coins", seed(gt(many)))

        # find: den, sn, AN, PAN
        fd = lambda coins: b"".join(coin(d, s) + an + pan for d, s, an, pan in coins)
        z = b"\x00" * 16
        an_match = [(d, s, stored_an(d, s), z) for d, s in good]
        pan_match = [(d, s, z, stored_an(d, s)) for d, s in good]
        write("find", f"{tag}-all-an", seed(fd(an_match)))
        write("find", f"{tag}-all-pan", seed(fd(pan_match)))
        write("find", f"{tag}-neither", seed(fd([(1, 5, z, z), (2, 6, z, z)])))
        write("find", f"{tag}-mixed", seed(fd(an_match[:2] + pan_match[2:] + [(1, 5, z, z)])))
        write("find", f"{tag}-missing-page", seed(fd(an_match + [(-1, 8192, z, z)])))
        write("find", f"{tag}-short", seed(fd(an_match)[:36]))
        write("find", f"{tag}-not-div", seed(fd(an_match)[:-1]))

        # validate_ticket: claimer, ticket (flags: ring slot, bit 3 keep id, bit 4 expire)
        for slot in range(3):
            write("validate_ticket", f"{tag}-ring{slot}-claimer{slot * 7}",
                  seed(bytes([slot * 7]) + b"\x00\x00\x00\x00", slot))
        write("validate_ticket", f"{tag}-unknown", seed(b"\x02\xde\xad\xbe\xef", 8))
        write("validate_ticket", f"{tag}-claimer-25", seed(b"\x19\x00\x00\x00\x01"))
        write("validate_ticket", f"{tag}-expired", seed(b"\x04\x00\x00\x00\x00", 16 | 2))
        write("validate_ticket", f"{tag}-long", seed(b"\x04\x00\x00\x00\x00\x00"))

        # fix: coins, PG, 25 tickets (flags: raida_no % 25)
        fx = lambda coins, tickets: (b"".join(coin(d, s) for d, s in coins) + bytes(range(16))
                                     + b"".join(struct.pack(">I", x) for x in tickets))
        tickets = [0 if i == 3 else 0x1000 + i for i in range(25)]
        write("fix", f"{tag}-five-coins", seed(fx(good, tickets), 3))
        write("fix", f"{tag}-no-tickets", seed(fx(good[:1], [0] * 25), 0))
        write("fix", f"{tag}-missing-page", seed(fx(good + [(3, 5)], tickets), 24))
        write("fix", f"{tag}-short", seed(fx(good[:1], tickets)[:120], 1))
        write("fix", f"{tag}-not-div", seed(fx(good, tickets)[1:], 1))
    for target in ("get_ticket", "find", "validate_ticket", "fix"):
        write(target, "null-body", b"\xff\x00")
        write(target, "empty-body", b"\x00\x00")


def peer_response():
    challenge = bytes(range(12))
    challenge += struct.pack(">I", zlib.crc32(challenge))

    def header(raida, status, size, echo=challenge):
        h = bytearray(32)
        h[0], h[2], h[3], h[5] = raida, status, 2, 1
        h[9:12] = size.to_bytes(3, "big")
        h[12:16] = b"\x00\x00\x01\x00"
        h[16:32] = echo
        return bytes(h)

    def seed(raida, status, body, size=None, flags=None, echo=challenge):
        size = len(body) if size is None else size
        return bytes([raida if flags is None else flags]) + challenge + header(raida, status, size, echo) + body

    coins = b"".join(coin(1, 5000 + i) for i in range(3))
    write("peer_response", "valid-3-coins", seed(4, 250, coins + b"\x3e\x3e"))
    write("peer_response", "valid-empty", seed(0, 250, b"\x3e\x3e"))
    write("peer_response", "liar-13-listings", seed(9, 250, coin(1, 5000) * 13 + b"\x3e\x3e"))
    big = b"".join(coin(-8, i) for i in range(4096)) + b"\x3e\x3e"
    write("peer_response", "valid-4096-coins", seed(24, 250, big))
    write("peer_response", "too-many-coins", seed(24, 250, big[:-2] + coin(1, 1) + b"\x3e\x3e"))
    write("peer_response", "wrong-raida", bytes([4]) + challenge + header(5, 250, 7) + coin(1, 1) + b"\x3e\x3e")
    write("peer_response", "declined-44", seed(4, 44, b""))
    write("peer_response", "no-echo", seed(4, 250, b"\x3e\x3e", echo=b"\x00" * 16))
    write("peer_response", "echo-flag", seed(4, 250, coins + b"\x3e\x3e", flags=0x84, echo=b"\x07" * 16))
    write("peer_response", "legacy-16mb-claim", seed(4, 250, b"\x3e\x3e", size=0xFFFFFF))
    write("peer_response", "bad-trailer", seed(4, 250, coins + b"\x3e\x3f"))


def peer_wire():
    # flags: bits 0-4 RAIDA asked, 0x20 put it in byte 0, 0x40 echo the challenge,
    # 0x80 status 250 and the body size of what follows; then the answer bytes
    def answer(raida, status, size, body):
        h = bytearray(32)
        h[0], h[2], h[3], h[5] = raida, status, 2, 1
        h[9:12] = size.to_bytes(3, "big")
        return bytes(h) + body

    coins = b"".join(coin(2, 7000 + i) for i in range(4)) + b"\x3e\x3e"
    write("peer_wire", "valid", bytes([4 | 0x20 | 0x40 | 0x80]) + answer(4, 250, 0, coins))
    write("peer_wire", "valid-exact-header", bytes([9 | 0x40]) + answer(9, 250, len(coins), coins))
    write("peer_wire", "declined-44", bytes([4 | 0x20 | 0x40]) + answer(4, 44, 0, b""))
    write("peer_wire", "wrong-raida", bytes([4 | 0x40 | 0x80]) + answer(5, 250, 0, coins))
    write("peer_wire", "no-echo", bytes([4 | 0x20 | 0x80]) + answer(4, 250, 0, coins))
    write("peer_wire", "short-header", bytes([4 | 0x20]) + answer(4, 250, 0, b"")[:20])
    write("peer_wire", "short-body", bytes([4 | 0x20 | 0x40]) + answer(4, 250, len(coins), coins[:-3]))
    write("peer_wire", "bad-trailer", bytes([4 | 0x20 | 0x40 | 0x80]) + answer(4, 250, 0, coins[:-1] + b"\x00"))
    write("peer_wire", "extra-after-body", bytes([4 | 0x20 | 0x40]) + answer(4, 250, len(coins), coins + b"junk" * 8))
    big = b"".join(coin(-8, i) for i in range(4096)) + b"\x3e\x3e"
    write("peer_wire", "4096-coins", bytes([24 | 0x20 | 0x40 | 0x80]) + answer(24, 250, 0, big))
    write("peer_wire", "16mb-claim", bytes([4 | 0x20 | 0x40]) + answer(4, 250, 0xFFFFFF, b"\x00" * 64))


def consensus():
    # n requested coins (indices into a pool of 16), then answers: peer, count, indices
    def seed(requested, answers):
        out = bytes([len(requested)]) + bytes(requested)
        for peer, listed in answers:
            out += bytes([peer, len(listed)]) + bytes(listed)
        return out

    write("consensus", "thirteen-peers-fix", seed([0, 1], [(p, [0]) for p in range(13)]))
    write("consensus", "twelve-peers-do-not", seed([0, 1], [(p, [0, 1]) for p in range(12)]))
    write("consensus", "liar-lists-thirteen-times", seed([0], [(5, [0] * 13)]))
    write("consensus", "same-peer-twice", seed([0, 0, 2], [(3, [0, 2]), (3, [0, 2]), (25, [0])]))
    write("consensus", "all-24", seed(list(range(16)), [(p, list(range(16))) for p in range(25) if p != 7]))


def config():
    # config.toml texts: the legacy layout, TOML forms the reader takes, and near misses
    servers = ",\n".join(f'    "127.0.0.1:{40000 + i}"' for i in range(25))
    write("config", "legacy-server-table", (
        "# RAIDA server\n[server]\nraida_id = 7\ncoin_id = 0x1\nport = 40_007\n"
        f"raida_servers = [\n{servers},\n]\n[other]\nkey = 'literal'\n").encode())
    write("config", "top-level-inline", (
        "raida_id = 0\nraida_servers = [" + ", ".join(f'"h{i}:1"' for i in range(25)) + "]\n"
        "extra = { a = 1, b = [true, 1.5, 1979-05-27T07:32:00Z] }\n"
        'multi = """\nline\n"""\n').encode())
    write("config", "twenty-four-servers", (
        "raida_id = 3\nraida_servers = [" + ", ".join(f'"h{i}:1"' for i in range(24)) + "]\n").encode())
    write("config", "bad-id-and-unterminated", b'raida_id = 99\nraida_servers = ["a:1\n')
    write("config", "nested", b"x = " + b"[" * 64 + b"]" * 64 + b"\n")


if __name__ == "__main__":
    commands()
    peer_response()
    peer_wire()
    consensus()
    config()
    # A reproducible marker of what produced the corpus.
    digest = hashlib.sha256(open(__file__, "rb").read()).hexdigest()[:16]
    print(f"corpus written by make_corpus.py {digest}")
