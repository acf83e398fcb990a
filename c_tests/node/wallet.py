"""The wallet side of a heal, as a real wallet does it over the legacy wire.

For coins that are fracked on some RAIDAs (their AN there is not the one the owner holds):
1. get_ticket on every RAIDA that is not fracked, all at once: each answers a ticket
   listing the coins whose AN it recognises;
2. fix on every fracked RAIDA, all at once, with the owner's new PG and the 25 tickets:
   each fracked RAIDA claims the tickets from its peers and, for each coin that at least
   14 RAIDAs vouch for, sets AN = MD5(raida_no, den, sn, PG);
3. find on every fracked RAIDA with the ANs the wallet now expects: 209 = healed.
"""

import concurrent.futures
import time
from dataclasses import dataclass, field

import raida_wire as rw


@dataclass
class Step:
    """One request of a heal: which RAIDA, its answer (or the error), and the time."""
    raida: int
    status: int = None  # None: no answer
    error: str = ""
    seconds: float = 0.0
    body: bytes = b""

    @property
    def label(self):
        if self.status is None:
            return "no answer (%s)" % self.error
        return "%d %s" % (self.status, rw.status_name(self.status))


@dataclass
class Heal:
    coins: list  # [(den, sn)]
    fracked: list
    pg: bytes
    tickets: list = field(default_factory=lambda: [0] * rw.TOTAL_RAIDA)
    get_ticket: dict = field(default_factory=dict)  # raida -> Step
    fix: dict = field(default_factory=dict)
    find: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)  # phase -> wall time

    def new_an(self, raida, coin_index):
        den, sn = self.coins[coin_index]
        return rw.derive_an(raida, den, sn, self.pg)

    @property
    def healed(self):
        """Every fracked RAIDA now holds every coin's new AN (find answered 209)."""
        return all(self.find.get(f) is not None and self.find[f].status == rw.FIND_ALL_AN
                   for f in self.fracked)

    def check_healed(self, what, *, tickets=True):
        """Raises AssertionError unless every fix answered 241 and every find 209 (and,
        with tickets, every get_ticket that was answered gave 241)."""
        if tickets:
            for r, step in sorted(self.get_ticket.items()):
                if step.status is not None:
                    rw.check_eq(step.status, rw.ALL_PASS, "%s: get_ticket on RAIDA %d" % (what, r))
        for f in self.fracked:
            rw.check_eq(self.fix[f].status, rw.ALL_PASS, "%s: fix on RAIDA %d" % (what, f))
            rw.check_eq(self.find[f].status, rw.FIND_ALL_AN, "%s: find on RAIDA %d" % (what, f))
        rw.check(self.healed, what + ": healed")


def _ask(addr_of, coin_id, raida, command, payload, timeout):
    started = time.monotonic()
    step = Step(raida)
    try:
        resp = rw.call(addr_of(raida), raida, command, payload, coin_id, timeout=timeout)
        step.status, step.body = resp.status, resp.body
    except (OSError, rw.WireError) as e:
        step.error = str(e) or type(e).__name__
    step.seconds = time.monotonic() - started
    return step


def ask_all(jobs, addr_of, coin_id, timeout=20.0):
    """jobs: {raida: (command, payload)} -> {raida: Step}, all requests in parallel."""
    if not jobs:
        return {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {r: pool.submit(_ask, addr_of, coin_id, r, c, p, timeout)
                   for r, (c, p) in jobs.items()}
        return {r: f.result() for r, f in futures.items()}


def get_tickets(heal, ans, addr_of, coin_id, raidas, timeout=20.0):
    """Step 1 on `raidas`: fills heal.get_ticket and heal.tickets."""
    n = len(heal.coins)
    jobs = {r: (rw.CMD_GET_TICKET,
                rw.get_ticket_payload([(d, s, ans[k][r]) for k, (d, s) in enumerate(heal.coins)]))
            for r in raidas}
    started = time.monotonic()
    heal.get_ticket.update(ask_all(jobs, addr_of, coin_id, timeout))
    heal.seconds["get_ticket"] = time.monotonic() - started
    for r in raidas:
        step = heal.get_ticket[r]
        heal.tickets[r] = rw.ticket_of(step.status, step.body, n)


def fix(heal, addr_of, coin_id, timeout=20.0):
    """Step 2: fix on every fracked RAIDA at once."""
    payload = rw.fix_payload(heal.coins, heal.pg, heal.tickets)
    started = time.monotonic()
    heal.fix.update(ask_all({f: (rw.CMD_FIX, payload) for f in heal.fracked},
                                 addr_of, coin_id, timeout))
    heal.seconds["fix"] = time.monotonic() - started


def find(heal, ans, addr_of, coin_id, timeout=20.0):
    """Step 3: find with the new ANs (the old ones as PANs) on every fracked RAIDA."""
    jobs = {}
    for f in heal.fracked:
        coins = [(d, s, heal.new_an(f, k), ans[k][f]) for k, (d, s) in enumerate(heal.coins)]
        jobs[f] = (rw.CMD_FIND, rw.find_payload(coins))
    started = time.monotonic()
    heal.find.update(ask_all(jobs, addr_of, coin_id, timeout))
    heal.seconds["find"] = time.monotonic() - started


def heal_coins(coins, ans, fracked, pg, addr_of, coin_id, timeout=20.0, between=None):
    """The whole heal. coins: [(den, sn)]; ans[k][i]: the AN the owner holds for coin k on
    RAIDA i; between: called after get_ticket, before fix (tests use it to break peers)."""
    heal = Heal(coins=list(coins), fracked=list(fracked), pg=pg)
    good = [r for r in range(rw.TOTAL_RAIDA) if r not in heal.fracked]
    get_tickets(heal, ans, addr_of, coin_id, good, timeout)
    if between:
        between(heal)
    fix(heal, addr_of, coin_id, timeout)
    find(heal, ans, addr_of, coin_id, timeout)
    return heal
