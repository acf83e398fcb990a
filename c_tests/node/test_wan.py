#!/usr/bin/env python3
"""The fix over a WAN: the 25-node network with a delay proxy in front of every
RAIDA, one-way delays spread from 5 to 250 ms as on several continents.

    python3 c_tests/node/test_wan.py --node build/raida_node

Nodes reach each other only through the proxies (delayproxy.py); wallets talk to the nodes
directly. The library's hedging settings are its defaults. In one network, in order:

1. every fixer heals once (warm-up: its peers' answer times are unknown), then three
   times more: each of those fixes opens at most one hedge (from its summary line), and
   the median fix time per fixer is within 1.15x of the physical floor, measured in the
   same run by the proxies: the 13th fastest peer's answer time (accept to last answer
   byte) among that fix's connections;
2. a lazy-accept peer (the legacy listener's stranded connection, played by its proxy)
   whose vote the fix needs is rescued by a hedge;
3. a heal storm: 20 wallets heal 20 different coins (each fracked on its own RAIDA) at the
   same moment: all healed.

Ends with "N passed, M failed"; exit status 1 when anything failed.
"""

import argparse
import concurrent.futures
import os
import random
import re
import signal
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "tests"))

import delayproxy  # noqa: E402
import netlab  # noqa: E402
import raida_wire as rw  # noqa: E402
import tally  # noqa: E402  (the one test runner)
import wallet  # noqa: E402

COIN_ID = 6
FIXERS = (3, 17)
MEASURED_FIXES = 3
STORM_WALLETS = 20
FLOOR_RATIO = 1.15
SUMMARY = re.compile(r"fix: (\d+) coins asked, (\d+) fixed.*; (\d+) hedged; ([\d.]+) ms")


check, check_eq = rw.check, rw.check_eq


def world_delays():
    """25 one-way delays, 5 to 250 ms, evenly spread and shuffled (a fixed seed)."""
    delays = [0.005 + 0.245 * k / 24 for k in range(25)]
    random.Random(10).shuffle(delays)
    return delays


class Wan:
    def __init__(self, node_bin):
        self.delays = world_delays()
        self.net = None
        self.proxies = delayproxy.DelayProxies(self.delays, lambda i: self.net.ports[i])
        try:
            self.net = netlab.Network(node_bin, coin_id=COIN_ID, peer_ports=self.proxies.ports)
        except BaseException:
            self.proxies.close()
            raise
        self.coins = {}

    def plant(self, sn, fracked):
        self.coins[sn] = self.net.plant_fracked(1, sn, fracked)

    def heal(self, sn, fracked, between=None):
        """Heals coin (1, sn); returns (heal, {fixer: log after}, (fix start, end))."""
        offsets = {f: len(self.net.log_text(f).encode()) for f in fracked}
        window = []

        def before_fix(heal):
            if between:
                between(heal)
            window.append(time.monotonic())

        heal = wallet.heal_coins([(1, sn)], [self.coins[sn]], fracked, bytes([sn % 256]) * 16,
                                 self.net.addr, COIN_ID, timeout=60, between=before_fix)
        window.append(time.monotonic())
        logs = {f: self.net.log_text(f, offsets[f]) for f in fracked}
        return heal, logs, tuple(window)

    def floor(self, fixer, window):
        """The 13th fastest peer's answer time among `fixer`'s connections in `window`,
        and how many connections it opened."""
        records = [r for r in self.proxies.snapshot()
                   if r.claimer == fixer and window[0] <= r.accepted <= window[1]]
        best = {}
        for r in records:
            if r.answer_time is not None:
                best[r.raida] = min(best.get(r.raida, r.answer_time), r.answer_time)
        times = sorted(best.values())
        check(len(times) >= 13, "RAIDA %d heard %d answers" % (fixer, len(times)))
        return times[12], len(records)

    def close(self):
        try:
            self.net.close(check_exits=True)
        finally:
            self.proxies.close()


def summary(log, what):
    found = SUMMARY.findall(log)
    check_eq(len(found), 1, what + ": one summary line")
    asked, fixed, hedged, ms = found[0]
    return int(hedged), float(ms) / 1000.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--node", default="build/raida_node", help="the raida_node binary")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    wan = Wan(os.path.abspath(args.node))
    try:
        warm, measured = 100, [101 + k for k in range(MEASURED_FIXES)]
        for sn in [warm] + measured:
            wan.plant(sn, FIXERS)
        lazy_sn = 200
        wan.plant(lazy_sn, [FIXERS[0]])
        storm = [(300 + k, k) for k in range(STORM_WALLETS)]
        for sn, fracked in storm:
            wan.plant(sn, [fracked])
        wan.net.start_all()

        def wan_fixes():
            heal, logs, _ = wan.heal(warm, FIXERS)
            heal.check_healed("warm-up heal", tickets=False)
            ratios = {f: [] for f in FIXERS}
            for sn in measured:
                heal, logs, window = wan.heal(sn, FIXERS)
                heal.check_healed("heal of coin %d" % sn, tickets=False)
                for f in FIXERS:
                    hedged, took = summary(logs[f], "RAIDA %d, coin %d" % (f, sn))
                    floor, connections = wan.floor(f, window)
                    print("      RAIDA %2d coin %d: fix %.0f ms, floor %.0f ms (%.3fx), "
                          "%d hedged, %d connections" % (f, sn, took * 1000, floor * 1000,
                                                          took / floor, hedged, connections))
                    check(hedged <= 1, "RAIDA %d opened %d hedges fixing coin %d"
                          % (f, hedged, sn))
                    check(connections <= 24 + 1, "%d connections" % connections)
                    ratios[f].append(took / floor)
            for f in FIXERS:
                median = statistics.median(ratios[f])
                check(median <= FLOOR_RATIO, "RAIDA %d: median fix time %.3fx the floor"
                      % (f, median))

        def lazy_accept_peer_is_rescued():
            fixer = FIXERS[0]
            order = sorted((r for r in range(25) if r != fixer), key=lambda r: wan.delays[r])
            lazy = order[0]  # the fastest peer: its usual answer is well under the floor
            voters = order[:13]  # the fix needs every one of them, the lazy one included

            def only_thirteen(heal):
                for r in range(25):
                    if r not in voters:
                        heal.tickets[r] = 0
                wan.proxies.set_lazy(lazy)

            try:
                heal, logs, _ = wan.heal(lazy_sn, [fixer], between=only_thirteen)
            finally:
                wan.proxies.set_lazy(lazy, False)
            heal.check_healed("heal with a lazy-accept peer", tickets=False)
            line = "fix: peer %d at 127.0.0.1:%d: voted (1 coins listed); hedged" % (
                lazy, wan.proxies.ports[lazy])
            check(line in logs[fixer], "the lazy peer voted through its hedge:\n" + logs[fixer])
            hedged, _ = summary(logs[fixer], "lazy heal")
            check_eq(hedged, 1, "hedges in the lazy heal")

        def heal_storm():
            with concurrent.futures.ThreadPoolExecutor(max_workers=STORM_WALLETS) as pool:
                heals = list(pool.map(lambda job: wan.heal(job[0], [job[1]])[0], storm))
            for (sn, fracked), heal in zip(storm, heals):
                heal.check_healed("storm: coin %d on RAIDA %d" % (sn, fracked), tickets=False)

        return tally.run_functions((wan_fixes, lazy_accept_peer_is_rescued, heal_storm),
                                       "WAN tests")
    finally:
        wan.close()


if __name__ == "__main__":
    sys.exit(main())
