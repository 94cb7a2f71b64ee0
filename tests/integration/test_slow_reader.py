#!/usr/bin/python3
"""A verifier whose browser stops reading while the queue churns (tablets
requesting and cancelling as fast as the gateway allows) is neither dropped
nor allowed to grow the gateway's memory: queue snapshots still waiting to be
sent are replaced by newer ones (docs/internals/signaling.md), so when the
verifier reads again it gets the latest queue, and its connection is intact.
"""

import asyncio
import socket
import sys
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import GatewayTestCase  # noqa: E402

CHURNING = ["TAB-S%02d" % i for i in range(3)]
WAITING = ["TAB-S%02d" % i for i in range(3, 20)]
CYCLES = 400


class SlowReader(GatewayTestCase):
    devices = {d: "PO-NUKUTA" for d in CHURNING + WAITING}
    # A small per-connection send queue (8 x 8 KiB) and no rate limit on the
    # tablets; 17 requests stay waiting, so every queue snapshot is ~4 KiB and
    # the churn pushes ~10 MB at the paused verifier: without snapshot
    # replacement its send queue would overflow and it would be dropped.
    # The pause can outlast the WebSocket idle timeout on a loaded machine (a
    # client that does not read cannot answer PING); that timeout is
    # test_security.py's subject, not this test's.
    config = {"limits": {"max_message_bytes": 8192, "messages_per_second": 100000,
                         "message_burst": 100000, "ws_idle_seconds": 3600}}

    async def churn(self, tablet):
        for i in range(CYCLES):
            await tablet.send({"type": "request", "procedure": "mynumber.new", "id": "r%d" % i})
            q = await tablet.expect("queued", re="r%d" % i)
            await tablet.send({"type": "cancel", "session": q["session"], "id": "c%d" % i})
            await tablet.expect("ended", re="c%d" % i)
        # leave one request waiting so the final queue is not empty
        await tablet.send({"type": "request", "procedure": "mynumber.new", "id": "last"})
        return (await tablet.expect("queued", re="last"))["session"]

    async def slow_verifier(self, username):
        """A staff client whose socket has a tiny receive buffer (set before
        connecting, so the TCP window stays small): once it stops reading,
        the gateway's writes back up within a few KiB."""
        cookie = await self.gw.login_ok(username)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((harness.HOST, self.gw.staff_port))
        ws = await websockets.connect(
            "wss://%s:%d/ws" % (harness.HOST, self.gw.staff_port), sock=sock,
            ssl=self.gw.ssl_context(), server_hostname=harness.HOST, origin=self.gw.origin,
            extra_headers=[("Cookie", harness.COOKIE + "=" + cookie)], max_size=None,
            ping_interval=None)
        c = harness.Client(ws, username)
        self.clients.append(c)
        await c.expect("hello")
        return c

    async def test_paused_verifier_gets_latest_queue_and_stays(self):
        verifier = await self.slow_verifier("v-yasuoka")
        await verifier.expect("queue")
        waiting = []
        for d in WAITING:
            tablet = await self.device(d)
            waiting.append((await self.request(tablet, id_="w"))["session"])
        tablets = [await self.device(d) for d in CHURNING]
        verifier.ws.transport.pause_reading()
        waiting += await asyncio.gather(*(self.churn(t) for t in tablets))
        verifier.ws.transport.resume_reading()

        def final(m):
            return sorted(e["session"] for e in m.get("entries", [])) == sorted(waiting)

        await verifier.expect("queue", pred=final, timeout=60 * harness.SLOW)
        self.assertTrue(verifier.is_open(), verifier.transcript())
        received = sum(1 for m in verifier.log if m.get("type") == "queue")
        sys.stderr.write("queue updates: %d sent as changes, %d received\n"
                         % (2 * CYCLES * len(CHURNING), received))
        self.assertLess(received, CYCLES * len(CHURNING),
                        "the paused reader should have been sent merged snapshots")
        self.assertNotIn("send_queue_full", self.gw.log_text())
        # the verifier still works: it can take one of the waiting requests
        await verifier.send({"type": "accept", "session": waiting[0], "id": "a"})
        await verifier.expect("assigned", re="a")
        await self.assert_alive()


if __name__ == "__main__":
    harness.main()
