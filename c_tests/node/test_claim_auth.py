#!/usr/bin/env python3
"""Authenticated claims on a node network (docs/tickets.md, "Authenticated claims").

    python3 c_tests/node/test_claim_auth.py --node build/raida_node [-k substring]

Runs in a network namespace of its own (it re-runs itself under `unshare -n`): loopback
holds only 127.0.0.1/32 and the few addresses the tests add, so 127.0.0.100, where the
configs list a RAIDA "behind NAT", is an address the host does not have (no bind can make
that RAIDA's claims leave from it). Tags are made here by raida_wire.claim_challenge, an
implementation of docs/wire-protocol.md's construction of its own. Ends with "N passed, M
failed".
"""

import concurrent.futures
import errno
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "tests"))

import netlab  # noqa: E402
import raida_wire as rw  # noqa: E402
import tally  # noqa: E402  (the one test runner)
import wallet  # noqa: E402

NODE_BIN = None
COIN_ID = 6
TESTS = []
KEY_SETTING = "RAIDA_HEALING_CLAIM_KEY_FILE"
POLICY_SETTING = "RAIDA_HEALING_CLAIM_POLICY"
# The address every config lists for a RAIDA behind NAT; not on this namespace's loopback.
NAT_LISTED = "127.0.0.100"
# Where made-up fixes come from: other clients than the honest wallet (127.0.0.1).
WALLET_ADDRS = ["127.0.0.%d" % i for i in range(2, 22)]
NETNS_MARK = "RAIDA_CLAIM_AUTH_IN_NETNS"
KEY = bytes(range(0x40, 0x60))
OLD_KEY = bytes([0x11] * 32)
STRANGER_KEY = bytes([0x77] * 32)

check, check_eq = rw.check, rw.check_eq


def test(fn):
    TESTS.append(fn)
    return fn


class KeyFolder:
    """A private folder of key files, removed on exit."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="raida_claim_keys_")
        os.chmod(self.path, 0o700)

    def key_file(self, name, current, previous=None, mode=0o600):
        return rw.write_claim_key_file(os.path.join(self.path, name), current, previous, mode)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        subprocess.run(["rm", "-rf", self.path], check=False)


def keyed_env(key_file, policy=None):
    env = {KEY_SETTING: key_file}
    if policy:
        env[POLICY_SETTING] = policy
    return env


def claim(net, peer, claimer, ticket, *, challenge=None, source=None):
    """A validate_ticket to RAIDA `peer` for `claimer`: (status, body)."""
    resp = net.call(peer, rw.CMD_VALIDATE_TICKET, rw.validate_payload(claimer, ticket),
                    challenge=challenge, source=source)
    return resp.status, resp.body


def tagged(key, claimer, peer, ticket, unix_seconds=None):
    return rw.claim_challenge(key, claimer, peer, COIN_ID, ticket, unix_seconds)


def one_ticket(net, raida, den, sn, an):
    """A live ticket at `raida` for the coin (den, sn), whose AN there is `an`."""
    resp = net.call(raida, rw.CMD_GET_TICKET, rw.get_ticket_payload([(den, sn, an)]))
    check_eq(resp.status, rw.ALL_PASS, "get_ticket at RAIDA %d" % raida)
    return int.from_bytes(resp.body, "big")


def cut_off_lines(net, raidas):
    return [(r, line) for r in raidas for line in net.log_text(r).splitlines()
            if "cut off" in line or "guessing ticket ids" in line]


# ---------------------------------------------------------------- a RAIDA behind NAT

def made_up_fixes(net, raida, coin, count):
    """`count` fix requests to `raida` for `coin`, each naming 24 made-up tickets, sent
    from WALLET_ADDRS in turn, 8 at a time: their statuses."""
    def one(i):
        tickets = [0] * rw.TOTAL_RAIDA
        for r in range(rw.TOTAL_RAIDA):
            if r != raida:
                tickets[r] = 0x10000000 + i * 32 + r
        payload = rw.fix_payload([coin], os.urandom(16), tickets)
        resp = net.call(raida, rw.CMD_FIX, payload, source=WALLET_ADDRS[i % len(WALLET_ADDRS)])
        return resp.status
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(count)))


def network(listed_behind_nat, node_env, **kw):
    """A netlab network whose configs list RAIDA `listed_behind_nat` at NAT_LISTED while it
    listens and connects on 127.0.0.1; node_env: each node's own environment."""
    net = netlab.Network(NODE_BIN, coin_id=COIN_ID,
                         hosts=lambda i: NAT_LISTED if i == listed_behind_nat else "127.0.0.1",
                         listen_hosts=lambda i: "127.0.0.1", **kw)
    net.node_env = node_env
    return net


def nat_network(keys):
    """25 nodes under `listed`, every config listing RAIDA 0 at NAT_LISTED (it connects
    from 127.0.0.1); with `keys`, every node holds the key file."""
    node_env = {i: keyed_env(keys.key_file("nat-%02d.key" % i, KEY)) for i in range(25)} \
        if keys else {}
    return network(0, node_env, env={POLICY_SETTING: "listed"})


@test
def a_keyed_raida_behind_nat_is_never_cut_off():
    """RAIDA 0 is listed at an address it does not have and connects from 127.0.0.1;
    every node holds the key and runs `listed`. 600 fixes naming made-up tickets (from 20
    other addresses) make RAIDA 0 fail 14,400 claims; its claims are verified, so no peer
    throttles it, and an honest heal at RAIDA 0 then answers 241. Without the key the
    same honest heal gets no vote (`listed` refuses 127.0.0.1 for RAIDA 0): 242."""
    with socket.socket() as s:
        try:
            s.bind((NAT_LISTED, 0))
            raise AssertionError("%s is an address of this namespace" % NAT_LISTED)
        except OSError as e:
            check_eq(e.errno, errno.EADDRNOTAVAIL, "binding the NAT address")
    coin = (1, 5000)
    with KeyFolder() as keys, nat_network(keys) as net:
        ans = [net.plant_fracked(*coin, [0])]
        net.start_all()
        statuses = made_up_fixes(net, 0, coin, 600)
        # 242: no peer vouched. (160: a fixing side that refuses a client sending fixes
        # whose tickets turn out unknown; none of these is the honest wallet.)
        check(all(s in (rw.ALL_FAIL, 160) for s in statuses),
              "made-up fixes answered %r" % sorted(set(statuses)))
        heal = wallet.heal_coins([coin], ans, [0], bytes(range(50, 66)), net.addr, COIN_ID)
        heal.check_healed("the honest heal at RAIDA 0 after 600 made-up fixes")
        check_eq(cut_off_lines(net, range(25)), [], "cut-off lines in the peers' logs")
        # Each peer's tag counts line, logged at its first claim: RAIDA 0's, verified.
        first = ("claim tags since start (verified/unverified/bad tag): TCP 1/0/0, UDP 0/0/0, "
                 "no address 0/0/0")
        for r in range(1, 25):
            check(first in net.log_text(r), "RAIDA %d logged %r" % (r, first))
    with nat_network(None) as net:
        ans = [net.plant_fracked(*coin, [0])]
        net.start_all()
        heal = wallet.heal_coins([coin], ans, [0], bytes(range(50, 66)), net.addr, COIN_ID)
        check_eq(heal.fix[0].status, rw.ALL_FAIL, "the same heal without the key")


# ---------------------------------------------------------------- what a claim proves

def single_node(env, raida=5):
    """Only RAIDA `raida` runs (with env); the other slots refuse connections."""
    return netlab.Network(NODE_BIN, coin_id=COIN_ID, dead=[r for r in range(25) if r != raida],
                          env=env)


@test
def authenticated_serves_only_verified_claims():
    """Under `authenticated`, a claim of a live ticket without a valid tag gets 43 from any
    address, whatever is wrong with its tag (none, tampered, made for another peer or
    claimer, an expired window, another key), and reaches nothing: the claim with a valid
    tag then gets the coins, and its replay 44. A flood of refusals writes at most a few
    lines."""
    peer, claimer, coin = 5, 3, (1, 777)
    with KeyFolder() as keys, single_node(keyed_env(keys.key_file("k", KEY),
                                                    "authenticated"), peer) as net:
        ans = net.plant_fracked(*coin, [])
        net.start_all()
        ticket = one_ticket(net, peer, *coin, ans[peer])
        now = int(time.time())
        good = tagged(KEY, claimer, peer, ticket, now)
        tampered = bytearray(good)
        tampered[11] ^= 0x01
        tampered[12:16] = rw.crc32(bytes(tampered[:12])).to_bytes(4, "big")
        refused = {
            "untagged": None,
            "tampered": bytes(tampered),
            "for another peer": tagged(KEY, claimer, peer + 1, ticket, now),
            "for another claimer": tagged(KEY, claimer + 1, peer, ticket, now),
            "for another ticket": tagged(KEY, claimer, peer, ticket ^ 1, now),
            "an expired window": tagged(KEY, claimer, peer, ticket, now - 180),
            "another key": tagged(STRANGER_KEY, claimer, peer, ticket, now),
        }
        for what, challenge in refused.items():
            for source in ("127.0.0.1", WALLET_ADDRS[0]):
                got = claim(net, peer, claimer, ticket, challenge=challenge, source=source)
                check_eq(got, (rw.NO_TICKET_FOUND, b""), "%s from %s" % (what, source))
        for i in range(200):
            got = claim(net, peer, i % 25, ticket ^ (i << 8), source=WALLET_ADDRS[i % 20])
            check_eq(got[0], rw.NO_TICKET_FOUND, "guess %d" % i)
        check_eq(claim(net, peer, claimer, ticket, challenge=good),
                 (rw.SUCCESS, rw.coin_bytes(*coin)), "the verified claim")
        check_eq(claim(net, peer, claimer, ticket, challenge=good)[0],
                 rw.TICKET_CLAIMED_ALREADY, "the verified claim replayed")
        lines = [line for line in net.log_text(peer).splitlines() if "refused" in line
                 and "authenticated" in line]
        check(1 <= len(lines) <= 3, "refusal lines for 214 refused claims: %r" % lines)


@test
def a_bad_tag_falls_back_to_the_address_rules():
    """Under `listed`, a valid tag admits a claim from an address the config does not list
    for its claimer; a bad tag is an unauthenticated claim: admitted from the listed
    address (127.0.0.1 for every RAIDA here), refused from another."""
    peer, coin = 5, (1, 778)
    with KeyFolder() as keys, single_node(keyed_env(keys.key_file("k", KEY), "listed"),
                                          peer) as net:
        ans = net.plant_fracked(*coin, [])
        net.start_all()
        ticket = one_ticket(net, peer, *coin, ans[peer])
        stranger = WALLET_ADDRS[1]
        now = int(time.time())
        listing = (rw.SUCCESS, rw.coin_bytes(*coin))
        check_eq(claim(net, peer, 3, ticket, challenge=tagged(KEY, 3, peer, ticket, now),
                       source=stranger), listing, "verified, from an unlisted address")
        for claimer, challenge in ((4, tagged(KEY, 4, peer + 1, ticket, now)),
                                   (6, tagged(STRANGER_KEY, 6, peer, ticket, now)),
                                   (7, tagged(KEY, 7, peer, ticket, now - 600))):
            check_eq(claim(net, peer, claimer, ticket, challenge=challenge, source=stranger),
                     (rw.NO_TICKET_FOUND, b""), "bad tag for %d from %s" % (claimer, stranger))
            check_eq(claim(net, peer, claimer, ticket, challenge=challenge,
                           source="127.0.0.1"), listing, "bad tag for %d, listed" % claimer)


@test
def rotation_accepts_the_previous_key():
    """A node holding current = KEY, previous = OLD_KEY (under `authenticated`) serves
    claims tagged with either, and not one tagged with a third key."""
    peer, coin = 5, (1, 779)
    with KeyFolder() as keys, single_node(keyed_env(keys.key_file("k", KEY, OLD_KEY),
                                                    "authenticated"), peer) as net:
        ans = net.plant_fracked(*coin, [])
        net.start_all()
        ticket = one_ticket(net, peer, *coin, ans[peer])
        listing = (rw.SUCCESS, rw.coin_bytes(*coin))
        check_eq(claim(net, peer, 1, ticket, challenge=tagged(OLD_KEY, 1, peer, ticket)),
                 listing, "tagged with the previous key")
        check_eq(claim(net, peer, 2, ticket, challenge=tagged(KEY, 2, peer, ticket)),
                 listing, "tagged with the current key")
        check_eq(claim(net, peer, 3, ticket, challenge=tagged(STRANGER_KEY, 3, peer, ticket)),
                 (rw.NO_TICKET_FOUND, b""), "tagged with another key")


@test
def a_key_file_others_may_read_is_refused():
    """A key file that is group- or world-readable, or a link, is refused with one line that
    says why: the node then verifies nothing (under `authenticated` it serves no claim)."""
    peer, coin = 5, (1, 780)
    with KeyFolder() as keys:
        link = os.path.join(keys.path, "link.key")
        os.symlink(keys.key_file("target.key", KEY), link)
        cases = [(keys.key_file("group.key", KEY, mode=0o640),
                  "mode 0640 lets others in; it must be 0600 or stricter (chmod 600)"),
                 (keys.key_file("world.key", KEY, mode=0o604),
                  "mode 0604 lets others in; it must be 0600 or stricter (chmod 600)"),
                 (link, "a symbolic link; it is never followed (put the file itself there)")]
        for path, why in cases:
            with single_node(keyed_env(path, "authenticated"), peer) as net:
                ans = net.plant_fracked(*coin, [])
                net.start_all()
                ticket = one_ticket(net, peer, *coin, ans[peer])
                check_eq(claim(net, peer, 3, ticket, challenge=tagged(KEY, 3, peer, ticket)),
                         (rw.NO_TICKET_FOUND, b""), "a valid tag, no key loaded (%s)" % path)
                line = "%s=%s refused: %s; claims are neither tagged nor verified" % (
                    KEY_SETTING, path, why)
                text = net.log_text(peer)
                check_eq(text.count(line), 1, "the refusal line in:\n" + text)


# ---------------------------------------------------------------- rolling out

@test
def a_mixed_network_heals():
    """One step of a rollout: RAIDAs 0-13 run this library with the key, 14-19 without,
    20-24 are legacy peers that only check the challenge's CRC. Every library node runs
    `listed`, and RAIDA 2 is listed at an address it does not have (behind NAT). RAIDA 2
    (keyed) and RAIDA 15 (unkeyed) heal: 15 by its listed address everywhere, 2 by its tag
    at the keyed peers (only the legacy ones would answer it otherwise: 6 votes). The
    legacy peers answered every claim, tagged or not."""
    keyed, unkeyed, legacy = range(0, 14), range(14, 20), range(20, 25)
    fracked, coin, seed = [2, 15], (1, 4242), b"old owner PG...."
    ans = [rw.derive_an(i, coin[0], coin[1], seed) for i in range(rw.TOTAL_RAIDA)]
    fakes = {i: rw.LegacyPeer(i, {coin: ans[i]}) for i in legacy}
    with KeyFolder() as keys:
        node_env = {i: keyed_env(keys.key_file("mixed-%02d.key" % i, KEY)) for i in keyed}
        with network(2, node_env, fakes=fakes, env={POLICY_SETTING: "listed"}) as net:
            on_disk = list(ans)
            for f in fracked:
                on_disk[f] = bytes([0xF0 ^ f]) * 16
            net.plant(*coin, on_disk)
            net.start_all()
            heal = wallet.heal_coins([coin], [ans], fracked, bytes(range(70, 86)), net.addr,
                                     COIN_ID)
            heal.check_healed("the mixed network")
            key_id = rw.claim_key_id(KEY)
            for i in legacy:
                with fakes[i].lock:
                    claims = [(b[16], b[:16]) for h, b in fakes[i].requests
                              if h[5] == rw.CMD_VALIDATE_TICKET]
                by = {claimer: challenge for claimer, challenge in claims}
                check_eq(sorted(by), fracked, "claimers at legacy RAIDA %d" % i)
                now = int(time.time())
                expected = [tagged(KEY, 2, i, heal.tickets[i], t) for t in (now - 60, now)]
                check(by[2] in expected, "RAIDA 2's challenge at RAIDA %d is its tag: %s not "
                      "in %s" % (i, by[2].hex(), [e.hex() for e in expected]))
                check(by[15][:2] != key_id, "RAIDA 15's challenge is not tagged")


def enter_network_namespace():
    """Re-runs this script under `unshare -n` (once), then gives loopback 127.0.0.1/32 and
    WALLET_ADDRS only."""
    if os.environ.get(NETNS_MARK) != "1":
        unshare = ["unshare", "-n"]
        if os.geteuid() != 0:
            unshare.append("--map-root-user")
        env = dict(os.environ, **{NETNS_MARK: "1"})
        os.execvpe(unshare[0], unshare + [sys.executable] + sys.argv, env)
    commands = [["ip", "link", "set", "lo", "up"],
                ["ip", "addr", "flush", "dev", "lo"]]
    commands += [["ip", "addr", "add", a + "/32", "dev", "lo"]
                 for a in ["127.0.0.1"] + WALLET_ADDRS]
    for command in commands:
        subprocess.run(command, check=True)


def main():
    global NODE_BIN
    NODE_BIN, only = netlab.test_program_args(__doc__, before_signals=enter_network_namespace)
    return tally.run_functions(TESTS, "claim authentication tests", only)


if __name__ == "__main__":
    sys.exit(main())
