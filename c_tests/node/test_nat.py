#!/usr/bin/env python3
"""A RAIDA behind NAT cannot be cut off by wallets: 25 raida_nodes in a network namespace
of their own, RAIDA 0 listed in every config at 10.99.0.1, an address this host does not
have (its claims leave from 127.0.0.1, so its peers throttle them like anyone's; binding
cannot help). Wallets connect from addresses the test adds to loopback (127.0.0.200-202,
127.1.x.y).

    python3 c_tests/node/test_nat.py --node build/raida_node

It re-runs itself under `unshare -n` (with `-r` when not root), where loopback has only
127.0.0.1/32 and the addresses above: no traffic can leave the namespace. For 61 and 600
fixes naming made-up tickets, from one address and from 1,000: every bogus fix is answered
242 (sent) or 160 (refused at once), exactly as many are sent as the fix gate allows (6
from one address, 24 from many); no peer logs RAIDA 0's address as a guesser; a wallet
that healed at RAIDA 0 before heals (241) during and after the flood; a new wallet heals
at once after a one-address flood and 5 s (one refill) after a many-address flood. Before
the fix gate, 61 such fixes cut RAIDA 0 off at every peer and its next heal answered 242.
"""

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import netlab  # noqa: E402
import raida_wire as rw  # noqa: E402
import wallet  # noqa: E402

COIN_ID = 6
LISTED_AT = "10.99.0.1"
RETURNING, NEWCOMER = "127.0.0.200", "127.0.0.201"
WALLETS = 1000
# docs/fix.md, "What wallets cannot spend": a client's strikes (5 at once, the 6th
# refuses), the open half of each peer's allowance (24), one refill (5 s).
FROM_ONE, FROM_MANY, REFILL_S = 6, 24, 5
REQUEST_RATE = rw.HEALING_STATUSES["REQUEST_RATE"]
INSIDE = "RAIDA_TEST_NAT_NETNS"


def wallet_addr(n):
    return "127.1.%d.%d" % (n // 250, n % 250 + 1)


def enter_namespace():
    """Re-runs this script in a network namespace of its own; returns its exit status."""
    cmd = ["unshare", "-n"] + ([] if os.geteuid() == 0 else ["-r"])
    env = dict(os.environ, **{INSIDE: "1"})
    return subprocess.call(cmd + [sys.executable, os.path.abspath(__file__)] + sys.argv[1:],
                           env=env)


def set_up_loopback():
    """Loopback with 127.0.0.1/32 and the wallets' addresses only."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "flush", "dev", "lo"], check=True)
    lines = ["addr add 127.0.0.1/32 dev lo"]
    lines += ["addr add %s/32 dev lo" % a for a in (RETURNING, NEWCOMER)]
    lines += ["addr add %s/32 dev lo" % wallet_addr(n) for n in range(WALLETS)]
    subprocess.run(["ip", "-batch", "-"], input="\n".join(lines) + "\n", text=True, check=True)
    shown = subprocess.run(["ip", "-4", "addr", "show", "dev", "lo"], capture_output=True,
                           text=True, check=True).stdout
    rw.check("127.0.0.1/32" in shown and "127.0.0.1/8" not in shown, "loopback: " + shown[:200])
    rw.check(LISTED_AT not in shown, "the listed address is not the host's")


class Scenario:
    def __init__(self, net):
        self.net = net
        self.coins = []

    def fracked_coin(self):
        """A new coin, fracked on RAIDA 0 only; (den, sn, the owner's ANs)."""
        sn = 7000 + len(self.coins)
        ans = self.net.plant_fracked(1, sn, [0])
        self.coins.append(sn)
        return (1, sn, ans)

    def fix_at_0(self, source, coins, tickets):
        payload = rw.fix_payload(coins, b"new owner PG....", tickets)
        resp = rw.call(self.net.addr(0), 0, rw.CMD_FIX, payload, COIN_ID, source=source)
        return resp.status

    def heal(self, source, coin):
        """get_ticket from RAIDAs 1-24, then fix at RAIDA 0 from `source`."""
        den, sn, ans = coin
        heal = wallet.Heal(coins=[(den, sn)], fracked=[0], pg=b"new owner PG....")
        wallet.get_tickets(heal, [ans], self.net.addr, COIN_ID, range(1, rw.TOTAL_RAIDA))
        return self.fix_at_0(source, [(den, sn)], heal.tickets)

    def bogus(self, source, n):
        tickets = [0] + [0xbad00000 ^ (n << 5) ^ i for i in range(1, rw.TOTAL_RAIDA)]
        return self.fix_at_0(source, [(1, self.coins[0])], tickets)


def flood(node_bin, fixes, addresses):
    what = "%d bogus fixes from %d address(es)" % (fixes, addresses)
    with netlab.Network(node_bin, coin_id=COIN_ID, listen_hosts=lambda i: "127.0.0.1",
                        hosts=lambda i: LISTED_AT if i == 0 else "127.0.0.1") as net:
        s = Scenario(net)
        coins = [s.fracked_coin() for _ in range(4)]
        net.start_all()
        rw.check_eq(s.heal(RETURNING, coins[0]), rw.ALL_PASS, what + ": the first heal")
        statuses = {}
        for n in range(fixes):
            status = s.bogus(wallet_addr(n % addresses), n)
            statuses[status] = statuses.get(status, 0) + 1
            if n == fixes // 2:
                rw.check_eq(s.heal(RETURNING, coins[1]), rw.ALL_PASS, what + ": mid-flood heal")
        rw.check_eq(s.heal(RETURNING, coins[2]), rw.ALL_PASS, what + ": heal after the flood")
        sent = min(fixes, FROM_ONE if addresses == 1 else FROM_MANY)
        rw.check_eq(statuses, {rw.ALL_FAIL: sent, REQUEST_RATE: fixes - sent}, what)
        for i in range(1, rw.TOTAL_RAIDA):
            log = net.log_text(i)
            rw.check("127.0.0.1 failed more than" not in log, "%s: RAIDA %d cut 127.0.0.1 off"
                     % (what, i))
        log0 = net.log_text(0)
        if addresses == 1:
            rw.check(("fix: client %s sent more than 5 fixes" % wallet_addr(0)) in log0,
                     what + ": RAIDA 0 says it refuses the client")
            rw.check_eq(s.heal(NEWCOMER, coins[3]), rw.ALL_PASS, what + ": a new wallet")
        else:
            rw.check_eq(s.heal(NEWCOMER, coins[3]), REQUEST_RATE,
                        what + ": a new wallet right after the flood")
            time.sleep(REFILL_S + 0.5)
            rw.check_eq(s.heal(NEWCOMER, coins[3]), rw.ALL_PASS,
                        what + ": a new wallet one refill later")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--node", required=True)
    args = parser.parse_args()
    if os.environ.get(INSIDE) != "1":
        return enter_namespace()
    set_up_loopback()
    failed = 0
    cases = [(61, 1), (61, WALLETS), (600, 1), (600, WALLETS)]
    for fixes, addresses in cases:
        name = "nat_flood_%d_from_%d" % (fixes, addresses)
        started = time.monotonic()
        try:
            flood(args.node, fixes, addresses)
            print("%s ... ok (%.1f s)" % (name, time.monotonic() - started))
        except AssertionError as e:
            failed += 1
            print("%s ... FAILED: %s" % (name, e))
    print("%d passed, %d failed" % (len(cases) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
