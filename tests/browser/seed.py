"""Three finished sessions with different outcomes, for the console tests
(test_auditor.mjs): gateway.py's `seed` command runs this against its own
gateway with real peers (tests/integration: the websocket client and aiortc).

1. PO-NUKUTA, verified: live media through aiortc, a consented recording of
   RECORD_SECONDS (the municipality's policy is optional), one chat message
   and one still (a real PNG the verifier asked for);
2. PO-KIYOTAKI (another municipality), not_verified;
3. PO-NUKUTA, aborted (reason NOTE, the verifier's sealed free text).

Returns {"verified": id, "not_verified": id, "aborted": id, "still": {...},
"recording": id, "note": NOTE}.
"""

import asyncio
import hashlib
import struct
import zlib

from test_files import expect, send_file  # noqa: E402  (tests/integration on sys.path)
from webrtc import LIVE_TIMEOUT, Leg  # noqa: E402

RECORD_SECONDS = 3.0
NOTE = "映像が乱れ、顔写真との照合ができなかった"


def real_png(width=320, height=240):
    """A small decodable RGB PNG: a gradient with a dark band."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        band = 120 if height // 3 < y < height // 2 else 0
        for x in range(width):
            rows += bytes((x * 255 // width, y * 255 // height, 200 - band))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(rows)))
            + chunk(b"IEND", b""))


async def request(tablet, verifier, id_):
    await tablet.send({"type": "request", "procedure": "mynumber.new", "id": id_})
    session = (await tablet.expect("queued"))["session"]
    await verifier.send({"type": "accept", "session": session})
    await verifier.expect("assigned", session=session)
    await tablet.expect("assigned", session=session)
    return session


async def finish(tablet, verifier, session, result, reason=None):
    msg = {"type": "outcome", "session": session, "result": result}
    if reason:
        msg["reason"] = reason
    await verifier.send(msg)
    await tablet.expect("ended", session=session)
    await verifier.expect("ended", session=session)


async def record(gw, tablet, verifier, session):
    """Record start, the clerk's consent, RECORD_SECONDS of media, stop; the
    recording's id once the gateway has stored it (state complete)."""
    await verifier.send({"type": "record", "session": session, "action": "start"})
    await tablet.expect("consent", session=session, timeout=LIVE_TIMEOUT)
    await tablet.send({"type": "consent", "session": session, "given": True})
    await verifier.expect("recording", session=session, state="on", timeout=LIVE_TIMEOUT)
    await asyncio.sleep(RECORD_SECONDS)
    await verifier.send({"type": "record", "session": session, "action": "stop"})
    await verifier.expect("recording", session=session, state="stopped", timeout=LIVE_TIMEOUT)
    for _ in range(150):
        stored = gw.sqlite("SELECT id FROM recording WHERE session_id = '%s'"
                           " AND state = 'complete'" % session).split()
        if stored:
            return stored[0]
        await asyncio.sleep(0.2)
    raise AssertionError("no recording_stored for %s" % session)


async def live_with_still(gw, tablet, verifier, session):
    t = Leg(tablet, session, ("file", "chat"))
    v = Leg(verifier, session, ("file", "chat"))
    try:
        await asyncio.gather(t.offer(), v.offer())
        await asyncio.gather(t.apply_answer(), v.apply_answer())
        for leg in (t, v):
            await leg.client.expect("state", session=session, state="live", timeout=LIVE_TIMEOUT)
        recording = await record(gw, tablet, verifier, session)
        tf = t.channels["file"]
        await asyncio.gather(tf.open(), v.channels["file"].open(), t.channels["chat"].open(),
                             v.channels["chat"].open())
        t.channels["chat"].chat("c-1", "本人確認書類を提示しました。")
        await verifier.send({"type": "still", "session": session})
        ask = await tablet.expect("still", session=session)
        photo = real_png()
        await send_file(tf, ask["id"], 1, "still.png", photo, "image/png", kind="still",
                        width=320, height=240)
        await expect(tf, type="file_verified", id=ask["id"])
        return recording, {"id": ask["id"], "sha256": hashlib.sha256(photo).hexdigest(),
                           "size": len(photo)}
    finally:
        # `verified` needs the tablet's media sent on the verifier's leg
        # (media_not_seen), which the per-second `quality` shows.
        await verifier.expect(
            "quality", session=session, leg="verifier", timeout=LIVE_TIMEOUT,
            pred=lambda m: m.get("stats", {}).get("counters", {}).get("packets_out", 0) > 0)
        await finish(tablet, verifier, session, "verified")
        await asyncio.gather(t.close(), v.close())


async def run(gw):
    verifier = await gw.connect_staff("v-yasuoka")
    tablet = await gw.connect_device("TAB-NUKUTA-1")
    nikko = await gw.connect_staff("v-nikko")
    kiyotaki = await gw.connect_device("TAB-KIYOTAKI-1")
    try:
        s1 = await request(tablet, verifier, "r1")
        recording, still = await live_with_still(gw, tablet, verifier, s1)
        s2 = await request(kiyotaki, nikko, "r2")
        await finish(kiyotaki, nikko, s2, "not_verified")
        s3 = await request(tablet, verifier, "r3")
        await finish(tablet, verifier, s3, "aborted", NOTE)
        return {"verified": s1, "not_verified": s2, "aborted": s3, "still": still,
                "recording": recording, "note": NOTE}
    finally:
        for c in (verifier, tablet, nikko, kiyotaki):
            await c.close()
