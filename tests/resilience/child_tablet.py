#!/usr/bin/python3
"""A tablet in its own process, so that a test can SIGKILL it
(test_crash.py).  argv: DATA_DIR STAFF_PORT DEVICE_PORT DEVICE MODE.
Prints "queued SESSION", then for MODE "queue" waits forever; for "hangup"
goes live and hangs up; for "kill" goes live, starts a 4 MiB file and prints
"sending" when half of it has left, then keeps sending slowly until killed."""

import asyncio
import hashlib
import json
import os
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))

import harness  # noqa: E402
from webrtc import LIVE_TIMEOUT, Leg  # noqa: E402


async def main(data_dir, staff_port, device_port, device, mode):
    gw = harness.Gateway(data_dir, ports=(int(staff_port), int(device_port)))
    client = await gw.connect_device(device)
    await client.send({"type": "request", "procedure": "mynumber.new", "id": "r"})
    session = (await client.expect("queued"))["session"]
    print("queued", session, flush=True)
    if mode == "queue":
        await asyncio.sleep(3600)
    await client.expect("assigned", session=session, timeout=LIVE_TIMEOUT)
    leg = Leg(client, session, ("file",))
    await leg.offer()
    await leg.apply_answer()
    await client.expect("state", session=session, state="live", timeout=LIVE_TIMEOUT)
    if mode == "hangup":
        await client.send({"type": "hangup", "session": session})
        await client.expect("ended", session=session)
        await leg.close()
        await client.close()
        return
    ch = leg.channels["file"]
    await ch.open()
    data = b"%PDF-1.4\n" + os.urandom(4 << 20)
    ch.dc.send(json.dumps({"type": "file_offer", "id": "k-1", "index": 1, "name": "k.pdf",
                           "size": len(data), "mime": "application/pdf",
                           "sha256": hashlib.sha256(data).hexdigest(), "kind": "file"}))
    while True:
        m = await ch.receive()
        if isinstance(m, dict) and m.get("type") == "file_accept":
            break
    half = len(data) // 2
    for off in range(0, len(data), 16384):
        ch.dc.send(struct.pack(">IQ", 1, off) + data[off:off + 16384])
        while ch.dc.bufferedAmount > 1 << 20:
            await asyncio.sleep(0.01)
        if off >= half:
            if off - 16384 < half:
                print("sending", flush=True)
            await asyncio.sleep(0.2)  # the rest trickles until SIGKILL


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
