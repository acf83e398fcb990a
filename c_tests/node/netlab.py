"""A loopback RAIDA network of raida_node processes (and fake peers) for tests and the demo.

Each node gets a folder <root>/raida_NN holding config.toml, Data/ and a symbolic link
`raida_node` to the one binary; it is started as <folder>/raida_node with no argument, so
it finds its folder from argv[0] as the legacy server does. Ports are asked from the OS
(or taken from a base port), and a start that loses a port to another process is retried
on fresh ports. Every process started is stopped by Network.close() (use `with`). Fake
peers (a slot's listener in this process) come from the kit, raida_wire.py.
"""

import argparse
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import raida_wire as rw

LISTEN_MARK = "listening on port"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0
EXIT_LISTEN = 3  # raida_node's exit code when its port is taken


def _die_with_parent():
    """In the child before exec: SIGKILL it when this process dies, however it dies, so
    no node outlives a killed test run. SIGKILL, not SIGTERM: a node a test has paused
    with SIGSTOP would keep a SIGTERM pending, stopped, forever. (An orderly end, with
    the nodes' final write-back, is close(); demo.py and test_network.py turn SIGTERM
    into one.)"""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _threads_of(pid):
    """Each thread's name, state and kernel wait channel: what a hung node is doing."""
    lines = []
    try:
        for tid in sorted(os.listdir("/proc/%d/task" % pid), key=int):
            base = "/proc/%d/task/%s/" % (pid, tid)
            fields = []
            for name in ("comm", "wchan", "syscall"):
                try:
                    with open(base + name) as f:
                        fields.append(f.read().strip().split(" ")[0])
                except OSError:
                    fields.append("?")
            lines.append("  thread %s %s: wchan %s, syscall %s\n" % (tid, *fields))
    except OSError as e:
        lines.append("  (no thread list: %s)\n" % e)
    return "".join(lines)


def free_ports(count):
    """count distinct ports the OS has just handed out for loopback listeners."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Network:
    """25 RAIDA slots on 127.0.0.1: real nodes, fakes, or dead ports."""

    def __init__(self, node_bin, *, coin_id=6, base_port=None, fakes=None, dead=(),
                 flush_freq=None, root=None, env=None, peer_ports=None, hosts=None,
                 listen_hosts=None, node_env=None):
        self.node_bin = os.path.abspath(node_bin)
        self.coin_id = coin_id
        self.base_port = base_port
        self.fakes = dict(fakes or {})  # raida -> rw.FakePeer
        self.dead = set(dead)  # raida slots where nothing listens
        self.flush_freq = dict(flush_freq or {})  # raida -> seconds
        self.own_root = root is None
        self.root = root or tempfile.mkdtemp(prefix="raida_net_")
        self.env = dict(os.environ, **(env or {}))
        self.node_env = dict(node_env or {})  # raida -> extra environment of that node only
        self.procs = {}
        self.started = []  # (raida, Popen) of every node ever started
        self.killed = set()  # Popen objects stopped with SIGKILL on purpose
        self.served = set()  # Popen objects that reached "listening" (others were reported)
        self.ports = []
        self.held = []  # bound, non-listening sockets that keep dead ports refused
        self.logs = {}
        # The ports the configs name for each RAIDA (e.g. delay proxies); default: its own.
        self.peer_ports = peer_ports
        # Each RAIDA's address (a multi-homed host: RAIDA i listens and is listed at
        # hosts(i)); default: every RAIDA on 127.0.0.1.
        self.hosts = hosts or (lambda i: "127.0.0.1")
        # Where RAIDA i really listens, when not where it is listed (behind NAT).
        self.listen_hosts = listen_hosts or self.hosts
        self._choose_ports()

    # ---- layout ----

    def folder(self, i):
        return os.path.join(self.root, "raida_%02d" % i)

    def addr(self, i):
        return (self.listen_hosts(i), self.ports[i])

    def real(self):
        return [i for i in range(rw.TOTAL_RAIDA) if i not in self.fakes and i not in self.dead]

    def _choose_ports(self):
        for s in self.held:
            s.close()
        self.held = []
        if self.base_port:
            ports = [self.base_port + i for i in range(rw.TOTAL_RAIDA)]
        else:
            ports = free_ports(rw.TOTAL_RAIDA)
        for i, fake in self.fakes.items():
            ports[i] = fake.port
        for i in self.dead:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
            self.held.append(s)
            ports[i] = s.getsockname()[1]
        self.ports = ports

    def write_configs(self):
        servers = ",\n".join('  "%s:%d"' % (self.hosts(i), p)
                              for i, p in enumerate(self.peer_ports or self.ports))
        for i in self.real():
            folder = self.folder(i)
            os.makedirs(os.path.join(folder, "Data"), exist_ok=True)
            link = os.path.join(folder, "raida_node")
            if not os.path.islink(link):
                os.symlink(self.node_bin, link)
            extra = ("flush_freq = %d\n" % self.flush_freq[i]) if i in self.flush_freq else ""
            with open(os.path.join(folder, "config.toml"), "w") as f:
                f.write("# RAIDA %d of a loopback test network\nraida_id = %d\ncoin_id = %d\n"
                        "port = %d\n%sraida_servers = [\n%s,\n]\n"
                        % (i, i, self.coin_id, self.ports[i], extra, servers))

    def plant(self, den, sn, ans, mfs=1):
        """Writes the coin's record on every real node: ans[i] on RAIDA i."""
        for i in self.real():
            rw.write_record(self.folder(i), den, sn, ans[i], mfs)

    def plant_fracked(self, den, sn, fracked, seed=b"old owner PG....",
                      broken=lambda f: bytes([0xF0 ^ f]) * 16):
        """Plants a coin whose AN differs on every RAIDA (as if last fixed with PG `seed`)
        and breaks it on `fracked` (RAIDA f holds broken(f)). Returns the ANs the owner
        holds, by RAIDA."""
        ans = [rw.derive_an(i, den, sn, seed) for i in range(rw.TOTAL_RAIDA)]
        on_disk = list(ans)
        for f in fracked:
            on_disk[f] = broken(f)
        self.plant(den, sn, on_disk)
        return ans

    # ---- processes ----

    def start(self, i, *, folder_arg=False):
        """Starts RAIDA i's node; waits until it listens. Returns False when its port was
        taken (the node exits with code 3)."""
        proc, offset = self._launch(i, folder_arg=folder_arg)
        return self._await_listening(i, proc, offset, time.monotonic() + START_TIMEOUT)

    def _launch(self, i, *, folder_arg=False):
        """Starts RAIDA i's node without waiting; returns (Popen, log offset)."""
        log_path = os.path.join(self.folder(i), "node.log")
        log = open(log_path, "ab")
        offset = log.tell()  # a restarted node appends; only its new lines count
        argv = [os.path.join(self.folder(i), "raida_node")]
        if folder_arg:
            argv = [self.node_bin, self.folder(i)]
        try:
            env = dict(self.env, RAIDA_NODE_LISTEN_ADDR=self.listen_hosts(i), **self.node_env.get(i, {}))
            proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                    env=env, cwd="/", preexec_fn=_die_with_parent)
        finally:
            log.close()
        self.procs[i] = proc
        self.started.append((i, proc))
        self.logs[i] = log_path
        return proc, offset

    def _await_listening(self, i, proc, offset, deadline):
        """Waits until RAIDA i's node (proc) listens: True; False when its port was taken.
        deadline (time.monotonic()) is a safety net only."""
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                if proc.returncode == EXIT_LISTEN:
                    return False
                raise RuntimeError("RAIDA %d exited with %d:\n%s" % (i, proc.returncode,
                                                                     self.log_text(i)))
            if LISTEN_MARK in self.log_text(i, offset):
                self.served.add(proc)
                return True
            time.sleep(0.01)
        raise RuntimeError("RAIDA %d did not start listening:\n%s" % (i, self.log_text(i)))

    def start_all(self, attempts=5):
        """Writes configs and starts every real node (all at once, then waits for each to
        listen); on a port lost to another process, stops them all and retries on fresh
        ports (unless a base port was given)."""
        for _ in range(attempts):
            self.write_configs()
            launched = [(i, self._launch(i)) for i in self.real()]
            # Nodes started together share the CPU (under valgrind, startup is slow): the
            # safety net is what starting them one by one would allow.
            deadline = time.monotonic() + START_TIMEOUT * len(launched)
            taken = [i for i, (proc, offset) in launched
                     if not self._await_listening(i, proc, offset, deadline)]
            if not taken:
                return
            self.stop_all()
            if self.base_port:
                raise RuntimeError("port %d (RAIDA %d) is in use; pick another base port"
                                   % (self.ports[taken[0]], taken[0]))
            self._choose_ports()
        raise RuntimeError("could not find 25 free ports")

    def log_text(self, i, offset=0):
        try:
            with open(self.logs[i], "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except (KeyError, OSError):
            return ""

    def alive(self, i):
        proc = self.procs.get(i)
        return proc is not None and proc.poll() is None

    def stop(self, i, sig=signal.SIGTERM):
        """Signals RAIDA i and waits for it; returns its exit code (None if never started)."""
        proc = self.procs.get(i)
        if proc is None:
            return None
        if proc.poll() is None:
            if sig == signal.SIGKILL:
                self.killed.add(proc)
            try:
                proc.send_signal(signal.SIGCONT)  # a stopped process must run to exit
                proc.send_signal(sig)
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                sys.stderr.write("RAIDA %d did not exit %.0f s after signal %d; killing it\n%s"
                                 % (i, STOP_TIMEOUT, sig, _threads_of(proc.pid)))
                proc.kill()
                proc.wait()
        return proc.returncode

    def pause(self, i):
        """SIGSTOP: the kernel still accepts connections for it; nothing answers."""
        self.procs[i].send_signal(signal.SIGSTOP)

    def resume(self, i):
        self.procs[i].send_signal(signal.SIGCONT)

    def stop_all(self):
        for i in list(self.procs):
            proc = self.procs[i]
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
        for i in list(self.procs):
            self.stop(i)
        self.procs = {}

    def unclean_exits(self):
        """Nodes that exited other than with 0 (unless killed on purpose) or whose log
        holds a sanitizer report: [(raida, exit code, reason)]."""
        bad = []
        for i, proc in self.started:
            if proc in self.killed or proc not in self.served or proc.returncode is None:
                continue
            if proc.returncode != 0:
                bad.append((i, proc.returncode, "exit code"))
        for i in {i for i, _ in self.started}:
            text = self.log_text(i)
            for mark in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "panicked"):
                if mark in text:
                    bad.append((i, None, mark))
        return bad

    def close(self, check_exits=False):
        """Stops everything and removes the folder. With check_exits, raises
        AssertionError (after cleaning up) when a node ended badly."""
        bad = []
        try:
            self.stop_all()
            if check_exits:
                bad = self.unclean_exits()
                for i, _, _ in bad:
                    sys.stderr.write("---- RAIDA %d log ----\n%s\n" % (i, self.log_text(i)[-4000:]))
        finally:
            for fake in self.fakes.values():
                fake.close()
            for s in self.held:
                s.close()
            if self.own_root:
                shutil.rmtree(self.root, ignore_errors=True)
        if bad:
            raise AssertionError("nodes ended badly: %r" % bad)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        # A failing test keeps its own error; a passing one also needs clean node exits.
        self.close(check_exits=exc_type is None)

    # ---- talking to it ----

    def call(self, i, command, payload, timeout=20.0, **kw):
        """rw.call to RAIDA i (kw: challenge, source)."""
        return rw.call(self.addr(i), i, command, payload, self.coin_id, timeout=timeout, **kw)


def test_program_args(doc, before_signals=None):
    """The command line every node-network test program takes: --node (the raida_node
    binary) and -k (run only tests whose name contains it). Returns (absolute node path,
    k). before_signals runs first (e.g. entering a network namespace); then SIGTERM (a CI
    timeout, make stopped) unwinds like Ctrl-C, so the running test's network stops its
    nodes (resuming paused ones) and removes its folder."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--node", default="build/raida_node", help="the raida_node binary")
    ap.add_argument("-k", default="", help="run only tests whose name contains this")
    args = ap.parse_args()
    if before_signals is not None:
        before_signals()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return os.path.abspath(args.node), args.k
