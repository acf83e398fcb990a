#!/usr/bin/env python3
"""The metrics file with real parts: raida_node processes, a real node_exporter, promtool.

    python3 c_tests/node/test_metrics.py --node build/raida_node [-k substring]

A fixing node writes RAIDA_HEALING_METRICS_FILE into a textfile-collector directory that
this test's own node_exporter serves (`--collector.disable-defaults --collector.textfile`,
on 127.0.0.1 and a port below 32768); the test scrapes node_exporter's /metrics over HTTP
and asserts the library's series and their exact values. Deadlines are safety nets only:
every wait is for a condition. Needs Debian's prometheus-node-exporter and prometheus
(promtool) packages, which .ci/run installs; without them the suite fails and says so.
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "tests"))

import netlab  # noqa: E402
import raida_wire as rw  # noqa: E402
import tally  # noqa: E402  (the one test runner)
import wallet  # noqa: E402

NODE_BIN = None
COIN_ID = 6
TESTS = []
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
PROMTOOL = shutil.which("promtool")
TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools",
                    "raida_healing.py")
MONITORING = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "monitoring")
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"

check, check_eq = rw.check, rw.check_eq


def test(fn):
    TESTS.append(fn)
    return fn


def wait_until(cond, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def parse(text):
    """Prometheus text -> {(name, frozenset of (label, value))}: value (float)."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        check(m is not None, "a well-formed sample line: %r" % line)
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                      m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def value(samples, name, **labels):
    key = (name, frozenset((k, str(v)) for k, v in labels.items()))
    check(key in samples, "series %s%r in the scrape" % (name, labels))
    return samples[key]


class NodeExporter:
    """node_exporter serving only the textfile collector of `directory`, on 127.0.0.1
    and a port below 32768 (retried on another when taken)."""

    def __init__(self, directory):
        check(NODE_EXPORTER is not None,
              "node_exporter is installed (apt-get install prometheus-node-exporter)")
        self.proc = None
        for _ in range(20):
            self.port = random.randrange(20000, 32000)
            self.log = tempfile.TemporaryFile()
            self.proc = subprocess.Popen(
                [NODE_EXPORTER, "--web.listen-address=127.0.0.1:%d" % self.port,
                 "--collector.disable-defaults", "--collector.textfile",
                 "--collector.textfile.directory=" + directory],
                stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL,
                preexec_fn=netlab._die_with_parent)
            if self._await_serving():
                return
        raise AssertionError("node_exporter could not listen on any port tried")

    def _await_serving(self):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # port taken (it says so in its log): try another
            try:
                self.scrape_text()
                return True
            except OSError:
                time.sleep(0.05)
        raise AssertionError("node_exporter did not serve:\n" + self.log_text())

    def log_text(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def scrape_text(self):
        url = "http://127.0.0.1:%d/metrics" % self.port
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.read().decode()

    def scrape(self):
        return parse(self.scrape_text())

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


def file_samples(path):
    with open(path) as f:
        return parse(f.read())


@test
def three_fixes_with_peer_7_dead_through_node_exporter():
    """RAIDA 3 runs 3 fixes of one coin each with RAIDA 7 dead (connection refused) and
    named by a ticket: the third failure ejects 7. The coins are fracked on 12 RAIDAs, so
    12 live peers and 3 itself can give 13 votes: 7's vote could be the 14th, so every
    fix waits for 7's refusal (exact outcomes, no race) and then fixes nothing.
    node_exporter serves RAIDA 3's file; every figure asserted is exact."""
    textfiles = tempfile.mkdtemp(prefix="raida_textfile_")
    prom = os.path.join(textfiles, "raida_healing.prom")
    env = {3: {"RAIDA_HEALING_METRICS_FILE": prom, "RAIDA_HEALING_METRICS_INTERVAL_MS": "100"}}
    fracked = [3] + list(range(10, 21))
    good = [r for r in range(rw.TOTAL_RAIDA) if r not in fracked and r != 7]
    try:
        with NodeExporter(textfiles) as exporter, \
                netlab.Network(NODE_BIN, coin_id=COIN_ID, dead=[7], node_env=env) as net:
            coins = [(1, 100), (1, 101), (1, 102)]
            ans = [net.plant_fracked(d, s, fracked) for d, s in coins]
            net.start_all()
            for k, coin in enumerate(coins):
                heal = wallet.Heal(coins=[coin], fracked=[3], pg=bytes([k]) * 16)
                wallet.get_tickets(heal, [ans[k]], net.addr, COIN_ID, good)
                check_eq(sum(1 for t in heal.tickets if t), 12, "12 tickets")
                heal.tickets[7] = 0x07070707
                wallet.fix(heal, net.addr, COIN_ID)
                check_eq(heal.fix[3].status, rw.ALL_FAIL, "fix %d: 13 votes at most" % k)
            # The writer rewrites the file every 100 ms; wait for the third fix's figures,
            # then for node_exporter to serve them.
            done = ("raida_healing_commands_total",
                    frozenset({("raida", "3"), ("command", "fix"), ("status", str(rw.ALL_FAIL))}))
            wait_until(lambda: os.path.exists(prom) and file_samples(prom).get(done) == 3,
                       what="the file's figures after the 3 fixes")
            s = wait_until(lambda: (lambda s: s if s.get(done) == 3 else None)(exporter.scrape()),
                           what="node_exporter serving them")
            check_eq(value(s, "node_textfile_scrape_error"), 0, "node_exporter read the file")
            r = {"raida": 3}
            check_eq(value(s, "raida_healing_build_info", version="0.1.0", **r), 1, "build info")
            check_eq(value(s, "raida_healing_command_duration_seconds_count", command="fix",
                           status=rw.ALL_FAIL, **r), 3, "3 fix durations")
            check_eq(sorted((dict(l)["command"], dict(l)["status"], v) for (n, l), v in s.items()
                            if n == "raida_healing_commands_total"),
                     [("fix", str(rw.ALL_FAIL), 3)], "RAIDA 3 answered 3 fixes and nothing else")
            check_eq(value(s, "raida_healing_fix_coins_fixed_total", **r), 0, "coins fixed")
            check_eq(value(s, "raida_healing_fix_coins_not_fixed_total", **r), 3, "not fixed")
            check_eq(value(s, "raida_healing_fix_coin_votes_count", **r), 3, "coins voted on")
            check_eq(value(s, "raida_healing_fix_coin_votes_bucket", le="13", **r), 3,
                     "every coin below 14 votes")
            check_eq(value(s, "raida_healing_fix_peer_outcomes_total", peer=7,
                           outcome="refused", **r), 3, "7 refused each fix")
            check_eq(sorted(dict(l)["outcome"] for (n, l), v in s.items()
                            if n == "raida_healing_fix_peer_outcomes_total"
                            and dict(l)["peer"] == "7"), ["refused"], "7's only outcome")
            for f in fracked[1:]:
                check_eq(value(s, "raida_healing_fix_peer_outcomes_total", peer=f,
                               outcome="no_ticket", **r), 3, "fracked %d had no ticket" % f)
            check_eq(value(s, "raida_healing_peer_failures_total", peer=7, **r), 3,
                     "7 failed 3 times")
            check_eq(value(s, "raida_healing_peer_ejected", peer=7, **r), 1, "7 ejected")
            check_eq(value(s, "raida_healing_peer_ejections_total", peer=7, **r), 1,
                     "7 ejected once")
            check_eq(value(s, "raida_healing_peer_consecutive_failures", peer=7, **r), 3,
                     "3 failures in a row")
            check(0 < value(s, "raida_healing_peer_next_probe_seconds", peer=7, **r) <= 10,
                  "7's probe within its 10 s cooldown")
            check_eq(value(s, "raida_healing_peer_connections", **r), 0, "no connection held")
            check_eq(value(s, "raida_healing_peer_connections_limit", **r), 256, "the limit")
            check_eq([k for k in s if k[0] == "raida_healing_panics_total"], [], "no panic")
            check_eq(value(s, "raida_healing_metrics_file_write_failures_total", **r), 0,
                     "no failed write")
            check(not any(name.startswith("raida_healing_") and dict(labels).get("raida") != "3"
                          for name, labels in s), "every series is labelled raida=\"3\"")
            # The fix summary in RAIDA 3's log carries a UTC time.
            check(re.search(r"^\[\w+\] %s raida_healing: fix: 1 coins asked, 0 fixed"
                            % TIMESTAMP, net.log_text(3), re.MULTILINE),
                  "a time-stamped fix summary in RAIDA 3's log:\n" + net.log_text(3)[-2000:])

            # promtool finds nothing to say about the file.
            check(PROMTOOL is not None, "promtool is installed (apt-get install prometheus)")
            with open(prom, "rb") as f:
                text = f.read()
            run = subprocess.run([PROMTOOL, "check", "metrics"], input=text,
                                 capture_output=True)
            check_eq((run.returncode, run.stdout + run.stderr), (0, b""), "promtool check metrics")

            # The ops tool's table and JSON from the same file.
            run = subprocess.run([sys.executable, TOOL, "metrics", "--json", prom],
                                 capture_output=True, text=True)
            check_eq(run.returncode, 0, "raida-healing metrics --json: " + run.stderr)
            report = json.loads(run.stdout)
            peer7 = [p for p in report["peers"] if p["peer"] == 7]
            check_eq([(p["ejected"], p["failures"], p["ejections"], p["consecutive_failures"])
                      for p in peer7], [(True, 3, 1, 3)], "peer 7 in the JSON")
            check_eq((report["raida"], report["coins_fixed"], report["coins_not_fixed"],
                      report["commands"]), ("3", 0, 3, [{"command": "fix", "status": rw.ALL_FAIL,
                                                          "count": 3}]), "totals in the JSON")
            check_eq(sorted(p["peer"] for p in report["peers"]), sorted(good + [7]), "peers asked")
            run = subprocess.run([sys.executable, TOOL, "metrics", prom], capture_output=True,
                                 text=True)
            check_eq(run.returncode, 0, "raida-healing metrics: " + run.stderr)
            check(re.search(r"^ +7 EJECTED +0 +3 +0 +0 +1 +0 +3 +- +- +\d+\.\d s$", run.stdout,
                            re.MULTILINE), "peer 7's line in the table:\n" + run.stdout)
            check(re.search(r"^ +0 ok +\d+ +0 +0 +\d+ +0 +0 +0 ", run.stdout, re.MULTILINE),
                  "peer 0's line in the table:\n" + run.stdout)

            # A reader polling the file 1,000 times sees whole files only, while the writer
            # replaces it (at least twice during the polling).
            inodes, reads = set(), 0
            deadline = time.monotonic() + 30
            while reads < 1000 or len(inodes) < 3:
                check(time.monotonic() < deadline, "the file was replaced while polled")
                with open(prom, "rb") as f:
                    inodes.add(os.fstat(f.fileno()).st_ino)
                    text = f.read()
                reads += 1
                check(text.startswith(b"# HELP raida_healing_build_info ") and text.endswith(
                    b'\nraida_healing_metrics_file_write_failures_total{raida="3"} 0\n'),
                    "read %d is a whole file (%d bytes)" % (reads, len(text)))
            check_eq([n for n in os.listdir(textfiles)], ["raida_healing.prom"],
                     "no temporary file is left in the directory")

            # Idle (no request at all): node_exporter's mtime of the file keeps moving.
            def mtime():
                found = [v for (n, l), v in exporter.scrape().items()
                         if n == "node_textfile_mtime_seconds"
                         and dict(l).get("file", "").endswith("raida_healing.prom")]
                check_eq(len(found), 1, "node_exporter's mtime of the file")
                return found[0]
            first = mtime()
            wait_until(lambda: mtime() > first, what="an idle rewrite")
    finally:
        shutil.rmtree(textfiles, ignore_errors=True)


def one_node_with_file(path, wrap=None):
    """RAIDA 0 alone (the others refuse), writing its metrics to `path` every 100 ms;
    `wrap(argv)` changes how it is started."""
    net = netlab.Network(NODE_BIN, coin_id=COIN_ID, dead=range(1, 25), node_env={0: {
        "RAIDA_HEALING_METRICS_FILE": path, "RAIDA_HEALING_METRICS_INTERVAL_MS": "100"}})
    return net


def commands_still_answer(net):
    den, sn = 1, 77
    an = bytes(range(16))
    rw.write_record(net.folder(0), den, sn, an, 1)
    resp = net.call(0, rw.CMD_FIND, rw.find_payload([(den, sn, an, an)]))
    check_eq(resp.status, rw.FIND_ALL_AN, "find answers")
    resp = net.call(0, rw.CMD_GET_TICKET, rw.get_ticket_payload([(den, sn, an)]))
    check_eq(resp.status, rw.ALL_PASS, "get_ticket answers")


def failure_lines(net):
    return re.findall(r"^\[error\] %s raida_healing: metrics: (.*)$" % TIMESTAMP,
                      net.log_text(0), re.MULTILINE)


@test
def a_missing_directory_is_logged_and_commands_still_answer():
    root = tempfile.mkdtemp(prefix="raida_nodir_")
    path = os.path.join(root, "absent", "raida_healing.prom")
    try:
        with one_node_with_file(path) as net:
            net.start_all()
            commands_still_answer(net)
            lines = wait_until(lambda: failure_lines(net), what="the failure's log line")
            check(lines[0].startswith("cannot open the directory %s/absent: " % root)
                  and "No such file or directory" in lines[0], "the line says why: %r" % lines)
            commands_still_answer(net)
            check_eq(len(failure_lines(net)), 1, "logged once a minute at most")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@test
def a_read_only_directory_is_logged_and_commands_still_answer():
    """As root (who writes anywhere a mode allows none) the directory is a read-only bind
    mount in a mount namespace of the node's own; otherwise mode 0555 does it."""
    root = tempfile.mkdtemp(prefix="raida_rodir_")
    textfiles = os.path.join(root, "textfiles")
    os.mkdir(textfiles)
    path = os.path.join(textfiles, "raida_healing.prom")
    try:
        with one_node_with_file(path) as net:
            if os.geteuid() == 0:
                net.write_configs()
                real = os.path.join(net.folder(0), "raida_node")
                wrapper = os.path.join(root, "raida_node_ro")
                with open(wrapper, "w") as f:
                    f.write("#!/bin/sh\nmount --bind %s %s && mount -o remount,bind,ro %s %s"
                            " && exec %s %s\necho 'cannot make the directory read-only' >&2;"
                            " exit 1\n" % (textfiles, textfiles, textfiles, textfiles, real,
                                           net.folder(0)))
                os.chmod(wrapper, 0o755)
                net.node_bin = "/usr/bin/unshare"
                net.procs = {}
                proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", wrapper],
                                        stdout=open(os.path.join(root, "node.log"), "ab"),
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=dict(net.env, **net.node_env[0]), cwd="/",
                                        preexec_fn=netlab._die_with_parent)
                net.procs[0] = proc
                net.started.append((0, proc))
                net.logs[0] = os.path.join(root, "node.log")
                check(net._await_listening(0, proc, 0, time.monotonic() + 15), "node listens")
            else:
                os.chmod(textfiles, 0o555)
                net.start_all()
            commands_still_answer(net)
            lines = wait_until(lambda: failure_lines(net), what="the failure's log line")
            check(lines[0].startswith("cannot create a temporary file for %s: " % path)
                  and ("Read-only file system" in lines[0] or "Permission denied" in lines[0]),
                  "the line says why: %r" % lines)
            commands_still_answer(net)
            check_eq(len(failure_lines(net)), 1, "logged once a minute at most")
            check_eq(os.listdir(textfiles), [], "nothing written")
    finally:
        os.chmod(textfiles, 0o755)
        shutil.rmtree(root, ignore_errors=True)


@test
def tickets_and_claims_are_counted_exactly():
    """RAIDA 0 alone: 2 tickets issued, then claims over TCP: one granted, the same again
    (already claimed), one of a ticket that does not exist; the file says so exactly,
    with the pool, the throttle table and the commands by status."""
    root = tempfile.mkdtemp(prefix="raida_claims_")
    prom = os.path.join(root, "raida_healing.prom")
    try:
        with one_node_with_file(prom) as net:
            net.write_configs()
            for sn in (10, 11):
                rw.write_record(net.folder(0), 1, sn, bytes([sn]) * 16, 1)
            net.start_all()
            tickets = []
            for sn in (10, 11):
                an = bytes([sn]) * 16
                resp = net.call(0, rw.CMD_GET_TICKET, rw.get_ticket_payload([(1, sn, an)]))
                tickets.append(rw.ticket_of(resp.status, resp.body, 1))
            for claimer, ticket, want in ((5, tickets[0], rw.SUCCESS),
                                          (5, tickets[0], rw.TICKET_CLAIMED_ALREADY)):
                resp = net.call(0, rw.CMD_VALIDATE_TICKET, rw.validate_payload(claimer, ticket))
                check_eq(resp.status, want, "claim by %d of %08x" % (claimer, ticket))
            # A guess from an address no RAIDA has (127.0.0.9): the guess throttle tracks it.
            data = rw.request(0, rw.CMD_VALIDATE_TICKET,
                              rw.validate_payload(6, tickets[0] ^ 0x5A5A5A5A), COIN_ID)
            with socket.create_connection(net.addr(0), timeout=20,
                                          source_address=("127.0.0.9", 0)) as sock:
                sock.sendall(data)
                resp = rw.parse_response_header(rw.recv_exactly(sock, rw.HEADER_BYTES))
            check_eq(resp.status, rw.NO_TICKET_FOUND, "a guessed ticket")
            done = ("raida_healing_commands_total", frozenset(
                {("raida", "0"), ("command", "validate_ticket"), ("status", str(rw.NO_TICKET_FOUND))}))
            wait_until(lambda: os.path.exists(prom) and file_samples(prom).get(done) == 1,
                       what="the file's figures after the claims")
            s = file_samples(prom)
            r = {"raida": 0}
            check_eq(sorted((dict(l)["command"], int(dict(l)["status"]), v) for (n, l), v in s.items()
                            if n == "raida_healing_commands_total"),
                     sorted([("get_ticket", rw.ALL_PASS, 2), ("validate_ticket", rw.SUCCESS, 1),
                             ("validate_ticket", rw.TICKET_CLAIMED_ALREADY, 1),
                             ("validate_ticket", rw.NO_TICKET_FOUND, 1)]), "commands")
            check_eq(sorted((dict(l)["result"], dict(l)["transport"], v) for (n, l), v in s.items()
                            if n == "raida_healing_claims_total"),
                     [("already_claimed", "tcp", 1), ("granted", "tcp", 1),
                      ("no_such_ticket", "tcp", 1)], "claims by result and transport")
            check_eq(value(s, "raida_healing_tickets_issued_total", **r), 2, "tickets issued")
            check_eq(value(s, "raida_healing_tickets_expired_total", **r), 0, "none expired")
            check_eq(value(s, "raida_healing_tickets_refused_pool_full_total", **r), 0, "none refused")
            check_eq(value(s, "raida_healing_tickets", **r), 2, "live tickets")
            check_eq(value(s, "raida_healing_ticket_coins", **r), 2, "coins on them")
            check_eq(value(s, "raida_healing_ticket_pool_units", **r), 2 + 2 * 7,
                     "2 coins and 2 tickets' charges")
            check_eq(value(s, "raida_healing_claim_throttle_sources", transport="tcp", **r), 1,
                     "the failed claim's source is tracked")
            check_eq(value(s, "raida_healing_claim_throttle_sources", transport="udp", **r), 0,
                     "no UDP source")
            check_eq(value(s, "raida_healing_claim_throttle_cut_off_sources", transport="tcp", **r),
                     0, "one failed claim cuts nobody off")
            with open(prom, "rb") as f:
                run = subprocess.run([PROMTOOL, "check", "metrics"], input=f.read(),
                                     capture_output=True)
            check_eq((run.returncode, run.stdout + run.stderr), (0, b""), "promtool check metrics")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@test
def the_dashboard_queries_are_promql():
    """Every query of the Grafana dashboard parses (promtool checks them as recording
    rules, Grafana's variables given plain values) and names only documented metrics."""
    with open(os.path.join(MONITORING, "raida_healing_dashboard.json")) as f:
        dashboard = json.load(f)
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    check(len(exprs) >= 15, "the dashboard has its queries")
    with open(os.path.join(os.path.dirname(MONITORING), "docs", "metrics.md")) as f:
        documented = set(re.findall(r"^\| `(raida_healing_\w+)` \|", f.read(), re.MULTILINE))
    for expr in exprs:
        for name in re.findall(r"\b(raida_healing_\w+)", expr):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            check(name in documented or base in documented, "%s is documented" % name)
    plain = [e.replace("$__rate_interval", "5m").replace("$__range", "1h")
             .replace("$instance", ".*").replace("$raida", ".*") for e in exprs]
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as rules:
        rules.write("groups:\n  - name: dashboard\n    rules:\n")
        for i, e in enumerate(plain):
            rules.write("      - record: dashboard:query%d\n        expr: %s\n" % (i, json.dumps(e)))
        rules.flush()
        run = subprocess.run([PROMTOOL, "check", "rules", rules.name], capture_output=True,
                             text=True)
        check_eq(run.returncode, 0, "promtool check rules:\n" + run.stdout + run.stderr)


def main():
    global NODE_BIN
    NODE_BIN, only = netlab.test_program_args(__doc__)
    return tally.run_functions(TESTS, "metrics tests", only)


if __name__ == "__main__":
    sys.exit(main())
