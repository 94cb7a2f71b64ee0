#!/usr/bin/python3
"""An aiortc tablet (Debian python3-aiortc) whose video frames carry a frame
counter, for tests/browser/test_aiortc_counter.mjs.

Usage: aiortc_tablet.py SETUP_JSON
SETUP_JSON is the `ready` line of gateway.py (data dir, ports, device).

It connects to the device listener with the tablet's client certificate
(through tests/integration/harness.py), sends `request`, and on `assigned`
offers audio + video with the integration tests' aiortc leg
(tests/integration/webrtc.py: gathering on 127.0.0.1 only, all candidates in
the offer, then a null candidate; of the gateway's candidates only loopback
ones are used).  Each video frame
is an 8 x 4 grid of black and white blocks: the 16-bit frame number, least
significant bit first, then the same bits inverted (web/test/counter.js reads
it back).  Progress goes to stdout as JSON lines: {"session"}, {"assigned"},
{"answer"}, {"state"}, {"ended"}, {"error"}, and {"frames": N} every second.
It stops when stdin closes or the session ends.
"""

import asyncio
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

import numpy  # noqa: E402
from aiortc.mediastreams import VideoStreamTrack  # noqa: E402
from av import VideoFrame  # noqa: E402

import harness  # noqa: E402
from webrtc import Leg  # noqa: E402  (loopback-only gathering and candidates)

WIDTH, HEIGHT = 320, 240
COLS, ROWS = 8, 4
WHITE, BLACK = 255, 0


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def counter_image(n):
    """RGB image of frame number n (mod 2^16): bits, then inverted bits."""
    img = numpy.full((HEIGHT, WIDTH, 3), BLACK, dtype=numpy.uint8)
    cw, ch = WIDTH // COLS, HEIGHT // ROWS
    n &= 0xFFFF
    for i in range(COLS * ROWS):
        bit = (n >> (i % 16)) & 1
        if i >= 16:
            bit ^= 1
        if bit:
            x, y = (i % COLS) * cw, (i // COLS) * ch
            img[y:y + ch, x:x + cw] = WHITE
    return img


class CounterTrack(VideoStreamTrack):
    def __init__(self):
        super().__init__()
        self.frames = 0

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame.from_ndarray(counter_image(self.frames), format="rgb24")
        frame.pts = pts
        frame.time_base = time_base
        self.frames += 1
        return frame


async def main():
    setup = json.loads(sys.argv[1])
    gw = harness.Gateway(Path(setup["dir"]) / "data",
                         ports=(setup["staff_port"], setup["device_port"]))
    client = await gw.connect_device(setup["device"]["id"])
    leg = None
    stdin_closed = asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    try:
        await client.send({"type": "request", "procedure": "mynumber.new", "id": "req-1"})
        queued = await client.expect("queued")
        session = queued["session"]
        out({"session": session})
        await client.expect("assigned", session=session, timeout=60 * harness.SLOW)
        out({"assigned": session})
        leg = Leg(client, session, video=CounterTrack())
        await leg.offer()
        await leg.apply_answer()
        out({"answer": True})

        async def report_frames():
            while True:
                await asyncio.sleep(1)
                out({"frames": leg.video.frames})

        async def follow_state():
            while True:
                m = await client.expect(None, timeout=3600, session=session,
                                        pred=lambda m: m.get("type") in ("state", "ended"))
                out({m["type"]: m.get("state") or m.get("reason"), "outcome": m.get("outcome")})
                if m["type"] == "ended":
                    return

        tasks = [asyncio.ensure_future(t) for t in (report_frames(), follow_state())]
        done, _ = await asyncio.wait(tasks + [stdin_closed], return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
        out({"frames": leg.video.frames, "done": True})
    except Exception as e:
        out({"error": "%s: %s" % (type(e).__name__, e), "transcript": client.transcript()})
        return 1
    finally:
        if leg:
            await leg.close()
        await client.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
