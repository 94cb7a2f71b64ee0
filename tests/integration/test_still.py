#!/usr/bin/python3
"""Still capture through the real gateway (DESIGN 4 and 5, docs/protocol.md
"still"): the verifier sends `still` over signaling; the gateway audits it,
names it and tells both parties; the tablet (an aiortc peer here; the
browser test tests/browser/test_still.mjs takes a real camera photo) sends
the photo on its "file" channel as kind "still" under that id.  The gateway
checks the claimed width and height against the image header, stores the
photo as evidence with its resolution, audits it, and offers it to the
verifier with kind, width and height.  A still nobody asked for, or one
whose size is not its image's, is refused and nothing is stored."""

import asyncio
import os
import sqlite3
import struct
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from test_files import expect, receive_file, send_file, sha256  # noqa: E402
from webrtc import LIVE_TIMEOUT, LiveBase  # noqa: E402


def png(width, height, extra=40000):
    """A PNG signature and IHDR for width x height, then filler bytes: the
    gateway reads only the header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + os.urandom(extra)


class Still(LiveBase):
    async def test_still_requested_sent_recorded(self):
        session, t, v = await self.go_live(("file",), ("file",))
        tf, vf = t.channels["file"], v.channels["file"]
        await asyncio.gather(tf.open(), vf.open())

        # Offered before anyone asked: refused, nothing kept.
        photo = png(1280, 720)
        send_early = asyncio.ensure_future(
            send_file(tf, "still-1", 1, "still.png", photo, "image/png", kind="still",
                      width=1280, height=720))
        with self.assertRaises(AssertionError) as refused:
            await asyncio.wait_for(send_early, LIVE_TIMEOUT)
        self.assertIn("still_not_requested", str(refused.exception))

        # Only the verifier may ask.
        await t.client.send({"type": "still", "session": session})
        await t.client.expect_error("forbidden")

        await v.client.send({"type": "still", "session": session})
        ask = await t.client.expect("still", session=session)
        self.assertEqual(ask["id"], "still-1")
        await v.client.expect("still", session=session, id="still-1")

        # The claimed size must be the image's: refused at file_done, and the
        # request is used up (the verifier asks again).
        await send_file(tf, "still-1", 2, "still.png", photo, "image/png", kind="still",
                        width=1920, height=1080)
        await expect(tf, type="file_error", id="still-1", code="still_resolution_mismatch")

        await v.client.send({"type": "still", "session": session})
        await t.client.expect("still", session=session, id="still-2")
        receiver = asyncio.ensure_future(receive_file(vf, "still-2"))
        await send_file(tf, "still-2", 3, "still.png", photo, "image/png", kind="still",
                        width=1280, height=720)
        await expect(tf, type="file_verified", id="still-2", sha256=sha256(photo))
        offer, got = await asyncio.wait_for(receiver, LIVE_TIMEOUT)
        self.assertEqual(got, photo)
        self.assertEqual((offer["kind"], offer["width"], offer["height"]), ("still", 1280, 720))

        entries = await self.gw.audit_api(session=session)
        asked = [e for e in entries if e.get("event") == "still"]
        self.assertEqual([(e["actor"], e["detail"]) for e in asked],
                         [("staff:v-yasuoka", {"id": "still-1"}),
                          ("staff:v-yasuoka", {"id": "still-2"})],
                         harness.describe_entries(entries))
        files = [e["detail"] for e in entries if e.get("event") == "file"]
        self.assertEqual(files, [{"id": "still-2", "sha256": sha256(photo), "size": len(photo),
                                  "mime": "image/png", "leg": "tablet", "kind": "still",
                                  "width": 1280, "height": 720}])
        refused = [e["detail"]["code"] for e in entries if e.get("event") == "file_refused"]
        self.assertEqual(refused, ["still_not_requested", "still_resolution_mismatch"])
        with sqlite3.connect(self.gw.database) as db:
            rows = db.execute("SELECT file_id, kind, width, height, sha256 FROM evidence "
                              "WHERE session_id = ?", (session,)).fetchall()
        self.assertEqual(rows, [("still-2", "still", 1280, 720, sha256(photo))])
        sdir = self.gw.dir / "evidence" / "sessions" / session
        self.assertEqual(sorted(p.name for p in sdir.iterdir() if p.name != "transcript"),
                         ["still-2.ev"])

        await t.client.send({"type": "hangup", "session": session})
        for leg in (t, v):
            await leg.client.expect("ended", session=session)


if __name__ == "__main__":
    harness.main()
