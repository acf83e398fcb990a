#!/usr/bin/env python3
"""make demo: a 25-node loopback RAIDA network heals a fracked coin, end to end.

    python3 c_tests/node/demo.py --node build/raida_node [--base-port N] [--keep]

Lays out 25 raida_node folders in a temporary directory, plants two coins whose AN
differs on every RAIDA, fracks each on two RAIDAs, and heals them as a wallet does
(get_ticket on the good RAIDAs, fix on the fracked ones with a new PG, find to confirm).
Round 1 runs on a healthy network; round 2 replaces one RAIDA by a stalled peer (it hands
out a ticket, then accepts connections and never answers) to show the heal does not wait
for it. Ports: --base-port / DEMO_BASE_PORT (base..base+24), else free ports from the OS.
Exit status 0 only when both coins are healed. Every process is stopped and the folder
removed at the end (--keep leaves the folder, with each node's node.log).
"""

import argparse
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import netlab  # noqa: E402
import raida_wire as rw  # noqa: E402
import wallet  # noqa: E402

COIN_ID = 6
STALLED = 20
# What the legacy C module waits for a silent peer, per fix (RAIDA_SERVER_RCV_TIMEOUT).
LEGACY_WAIT = "32 s"


LEGEND = """\
How to read this report
  AN      a coin's authenticity number: 16 secret bytes, a different one on each of the 25
          RAIDAs; the owner's wallet knows all 25.
  fracked a RAIDA whose AN for the coin no longer matches the owner's: healing repairs it.
  PG      the owner's "proposed generator": 16 random bytes the wallet sends with fix. A
          fracked RAIDA that fixes the coin sets its AN to MD5(RAIDA number, den, sn, PG),
          which the owner can compute and nobody else learns.
  ticket  proof that a RAIDA accepted the owner's AN (get_ticket); during a fix the fixing
          RAIDA asks its 24 peers to validate their tickets, and rewrites the AN when 14
          RAIDAs (itself included) vouch for the coin.
  steps   find (command 60) asks whether a RAIDA holds the owner's AN; get_ticket (40) on
          the good RAIDAs; fix (80) on each fracked one; find again to confirm.
  answers 209 find: holds the AN (good)        208 find: holds neither AN nor PG's (fracked)
          241 all coins passed / were fixed    242 none passed / were fixed
          243 some did (a bitfield follows)    40  no such coin
          -   not asked: the step does not go to that RAIDA
          ?   no answer (the error is named below the table)
"""


def ms(seconds):
    return "%.1f ms" % (seconds * 1000)


def summarize(statuses):
    """{raida: Step} -> '23 x 241 all pass' (grouped by answer)."""
    groups = {}
    for r, step in sorted(statuses.items()):
        groups.setdefault(step.label, []).append(r)
    parts = []
    for label, raidas in groups.items():
        if len(raidas) > 3:
            parts.append("%d x %s" % (len(raidas), label))
        else:
            parts.append(", ".join("RAIDA %d: %s" % (r, label) for r in raidas))
    return "; ".join(parts)


def fix_details(text):
    """From a fixer's log lines for one fix (the library logs one line per peer asked):
    the peers that voted, each asked peer's outcome, the peers that were hedged."""
    voted = re.findall(r"fix: peer (\d+) at \S+: voted \((\d+) coins listed\)", text)
    outcome = {int(m[0]): m[1] for m in re.findall(r"fix: peer (\d+) at \S+: ([^;\n]+)", text)}
    hedged = [int(m) for m in re.findall(r"fix: peer (\d+) at \S+: [^\n]*; hedged", text)]
    return voted, outcome, hedged


class Demo:
    def __init__(self, node_bin, base_port, keep):
        self.net = netlab.Network(node_bin, coin_id=COIN_ID, base_port=base_port)
        self.keep = keep
        self.ok = True

    def say(self, line=""):
        print(line, flush=True)

    def plant(self, den, sn, fracked, seed):
        """A coin whose AN differs on every RAIDA (as if last fixed with PG `seed`),
        random bytes on `fracked`. Returns the ANs the owner holds."""
        return self.net.plant_fracked(den, sn, fracked, seed, broken=lambda f: os.urandom(16))

    def heal_round(self, title, coin, ans, fracked, pg, stalled=None):
        den, sn = coin
        net = self.net
        self.say(title)
        before = wallet.ask_all(
            {r: (rw.CMD_FIND, rw.find_payload([(den, sn, ans[r], ans[r])]))
             for r in range(rw.TOTAL_RAIDA) if r != stalled},
            net.addr, COIN_ID)
        self.say("  %-16s %s" % ("find (before)", summarize(before)))
        offsets = {f: len(net.log_text(f).encode()) for f in fracked}
        started = time.monotonic()
        heal = wallet.heal_coins([coin], [ans], fracked, pg, net.addr, COIN_ID)
        total = time.monotonic() - started
        self.say("  %-16s %s   (all at once, %s)" % (
            "get_ticket x%d" % len(heal.get_ticket), summarize(heal.get_ticket),
            ms(heal.seconds["get_ticket"])))
        fix_ms = {}
        for f in fracked:
            step = heal.fix[f]
            voted, outcome, hedged = fix_details(net.log_text(f, offsets[f]))
            unneeded = sum(1 for o in outcome.values() if o.startswith("unneeded"))
            timed_out = sum(1 for o in outcome.values() if o.startswith("timed out"))
            fix_ms[f] = step.seconds
            self.say("  %-16s %s in %s; votes for %d/%d: %d (this RAIDA + %d peers; 14 needed);"
                     " %d peers unneeded, %d timed out, %d hedged" % (
                         "fix on RAIDA %d" % f, step.label, ms(step.seconds), den, sn,
                         1 + len(voted), len(voted), unneeded, timed_out, len(hedged)))
            if stalled is not None and stalled in outcome:
                self.say("  %-16s RAIDA %d (stalled) in this fix: %s%s" % (
                    "", stalled, outcome[stalled], "; hedged" if stalled in hedged else ""))
        self.say("  %-16s %s" % ("find (after)", summarize(heal.find)))
        self.say()
        self.table(before, heal, stalled)
        self.say()
        for f in fracked:
            got = rw.derive_an(f, den, sn, pg)
            self.say("  %-16s RAIDA %d now holds MD5(%d, %d, %d, PG) = %s" % (
                "", f, f, den, sn, got.hex()))
        self.say("  %-16s %s (wallet's view: get_ticket + fix + find = %s)" % (
            "healed", "yes" if heal.healed else "NO", ms(total)))
        self.ok = self.ok and heal.healed
        return heal, fix_ms

    def table(self, before, heal, stalled):
        """One column per RAIDA: each step's answer there (see the legend)."""
        def cell(steps, r):
            step = steps.get(r)
            if step is None:
                return "-"
            return "?" if step.status is None else str(step.status)
        rows = [("RAIDA", {r: str(r) for r in range(rw.TOTAL_RAIDA)}),
                ("find (before)", before), ("get_ticket", heal.get_ticket),
                ("fix", heal.fix), ("find (after)", heal.find)]
        for name, steps in rows:
            cells = [steps[r] if name == "RAIDA" else cell(steps, r)
                     for r in range(rw.TOTAL_RAIDA)]
            self.say("  %-14s%s" % (name, "".join("%4s" % c for c in cells)))
        if stalled is not None:
            self.say("  %-14sRAIDA %d is the stalled peer: asked nothing by the wallet after its"
                     " ticket" % ("", stalled))
        errors = sorted({(r, step.error) for steps in (before, heal.get_ticket, heal.fix, heal.find)
                         for r, step in steps.items() if step.status is None})
        for r, error in errors:
            self.say("  %-14s? at RAIDA %d: %s" % ("", r, error))

    def run(self):
        net = self.net
        coin_a, coin_b = (1, 5000), (2, 777)
        fracked_a, fracked_b = [3, 17], [8, 14]
        ans_a = self.plant(*coin_a, fracked_a, b"owner's old PG a")
        ans_b = self.plant(*coin_b, fracked_b, b"owner's old PG b")
        net.start_all()
        self.say("raida_node demo: 25 RAIDAs on 127.0.0.1 (ports %s), coin id %d, folder %s" % (
            port_range(net.ports), COIN_ID, net.root))
        self.say("coins: %d/%d fracked on RAIDA %s; %d/%d fracked on RAIDA %s;"
                 " each AN differs on every RAIDA" % (coin_a + (fracked_a,) + coin_b + (fracked_b,))
                 )
        self.say()
        self.say(LEGEND)
        _, fix1 = self.heal_round("round 1: a healthy network heals coin %d/%d" % coin_a,
                                  coin_a, ans_a, fracked_a, os.urandom(16))
        self.say()

        # Round 2: RAIDA STALLED becomes a fake on the same port that hands out a ticket
        # and then never answers the fixers' validate_ticket requests.
        net.stop(STALLED)
        stalled = rw.StallingPeer(STALLED, port=net.ports[STALLED])
        net.fakes[STALLED] = stalled
        _, fix2 = self.heal_round(
            "round 2: RAIDA %d is stalled (gives a ticket, then accepts and never answers);"
            " heal coin %d/%d" % ((STALLED,) + coin_b), coin_b, ans_b, fracked_b, os.urandom(16),
            stalled=STALLED)
        claims = stalled.validate_requests()
        self.say("  %-16s the stalled RAIDA got %d validate_ticket request(s) from RAIDA %s and"
                 " answered none" % ("", len(claims), sorted({c for c, _ in claims})))
        self.say()
        self.say("fix times: healthy %s; with a stalled peer %s (the legacy module waits %s per"
                 " fix for a silent peer)" % (
                     " / ".join(ms(t) for t in fix1.values()),
                     " / ".join(ms(t) for t in fix2.values()), LEGACY_WAIT))
        self.say("result: %s" % ("HEALED" if self.ok else "NOT HEALED"))
        return 0 if self.ok else 1

    def close(self):
        if self.keep:
            self.net.own_root = False
            self.say("node folders kept in %s" % self.net.root)
        self.net.close()


def port_range(ports):
    return "%d-%d" % (min(ports), max(ports)) if max(ports) - min(ports) == 24 else \
        ",".join(str(p) for p in ports)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--node", default="build/raida_node", help="the raida_node binary")
    ap.add_argument("--base-port", type=int, default=int(os.environ.get("DEMO_BASE_PORT") or 0),
                    help="RAIDA i listens on base+i (default: free ports from the OS)")
    ap.add_argument("--keep", action="store_true", help="keep the node folders and logs")
    args = ap.parse_args()
    # SIGTERM (e.g. from a CI timeout) unwinds through the finally below like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    demo = Demo(args.node, args.base_port or None, args.keep)
    try:
        return demo.run()
    except Exception as e:  # the report ends with the reason instead of a bare traceback
        print("demo failed: %s: %s" % (type(e).__name__, e), flush=True)
        return 1
    finally:
        demo.close()


if __name__ == "__main__":
    sys.exit(main())
