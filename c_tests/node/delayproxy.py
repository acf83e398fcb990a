"""Delay proxies: one TCP proxy per RAIDA that makes loopback look like a WAN.

RAIDA i's proxy forwards to the node's real port and delays traffic by delay[i] seconds
one way, modelling an answer as four one-way trips the way a real client sees it: the
first request bytes reach the node 3 x delay after the connection is accepted (SYN,
SYN-ACK, then the request), every later chunk delay after it arrived, and every answer
chunk delay after the node sent it. A proxy can also play the legacy listener's lazy
accept (wire-protocol.md): a connection waits, unserved, until another one arrives.

All proxies run in one asyncio thread. Each connection is recorded (RAIDA, the claimer
index read from a validate_ticket request, when it was accepted and when its answer was
fully delivered) so a test can compute the physical floor of a fix in the same run.
"""

import asyncio
import threading
import time

import raida_wire as rw

# A validate_ticket request's claimer byte: after the header and the challenge.
CLAIMER_AT = rw.HEADER_BYTES + 16


class Record:
    def __init__(self, raida, accepted):
        self.raida = raida
        self.accepted = accepted
        self.claimer = None
        self.answered = None  # when the last answer byte was handed to the client

    @property
    def answer_time(self):
        return None if self.answered is None else self.answered - self.accepted


class DelayProxies:
    def __init__(self, delays, upstream_port):
        """delays: 25 one-way delays in seconds; upstream_port(i): RAIDA i's node port."""
        self.delays = list(delays)
        self.upstream_port = upstream_port
        self.lazy = set()
        self.records = []
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stranded = {}  # raida -> asyncio.Event releasing its stranded connection
        self.servers = [self._call(self._listen(i)) for i in range(len(self.delays))]
        self.ports = [s.sockets[0].getsockname()[1] for s in self.servers]

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def _listen(self, i):
        return await asyncio.start_server(
            lambda r, w: self._serve(i, r, w), "127.0.0.1", 0, backlog=1024)

    def set_lazy(self, raida, lazy=True):
        def change():
            if lazy:
                self.lazy.add(raida)
            else:
                self.lazy.discard(raida)
                event = self.stranded.pop(raida, None)
                if event:
                    event.set()
        self.loop.call_soon_threadsafe(change)

    def snapshot(self):
        with self.lock:
            return list(self.records)

    async def _serve(self, i, reader, writer):
        loop = asyncio.get_running_loop()
        record = Record(i, loop.time())
        with self.lock:
            self.records.append(record)
        delay = self.delays[i]
        upstream = None
        try:
            if i in self.lazy:
                waiting = self.stranded.pop(i, None)
                if waiting:
                    waiting.set()  # this arrival gets the stranded one accepted
                else:
                    event = asyncio.Event()
                    self.stranded[i] = event
                    await event.wait()
            up_reader, upstream = await asyncio.open_connection(
                "127.0.0.1", self.upstream_port(i))
            first_at = record.accepted + 3 * delay

            async def requests():
                head = b""
                first = True
                while True:
                    data = await reader.read(65536)
                    if not data:
                        break
                    if len(head) < rw.VALIDATE_REQUEST_BYTES:
                        head += data[:rw.VALIDATE_REQUEST_BYTES - len(head)]
                        if len(head) > CLAIMER_AT and head[5] == rw.CMD_VALIDATE_TICKET:
                            record.claimer = head[CLAIMER_AT]
                    at = max(first_at, loop.time() + delay) if first else loop.time() + delay
                    first = False
                    await asyncio.sleep(max(0.0, at - loop.time()))
                    upstream.write(data)
                    await upstream.drain()

            async def answers():
                while True:
                    data = await up_reader.read(65536)
                    if not data:
                        break
                    await asyncio.sleep(delay)
                    writer.write(data)
                    await writer.drain()
                    record.answered = loop.time()
                writer.close()

            ask = asyncio.ensure_future(requests())
            try:
                await answers()
            finally:
                ask.cancel()
                await asyncio.gather(ask, return_exceptions=True)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for w in (writer, upstream):
                if w is not None:
                    try:
                        w.close()
                    except OSError:
                        pass

    def close(self):
        async def stop():
            for s in self.servers:
                s.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            self._call(stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)
            if not self.thread.is_alive():
                self.loop.close()


def monotonic():
    """The proxies' clock (asyncio's loop.time() is time.monotonic())."""
    return time.monotonic()
