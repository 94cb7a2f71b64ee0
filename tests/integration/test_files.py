#!/usr/bin/python3
"""Files over WebRTC data channels through the real gateway (DESIGN 4,
docs/protocol.md "Data channels"): both legs are aiortc peers with a "file"
channel.  A file is checked against the municipality's policy (default:
10 MB, JPEG/PNG/PDF by magic bytes), hashed, stored encrypted as evidence and
audited as "file" {id, sha256, size, mime, leg} -- never its name -- before
it is offered to the other leg.  Types are checked by magic bytes only, so
the files are a PNG signature or "%PDF-" followed by random bytes."""

import asyncio
import hashlib
import json
import os
import sqlite3
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from webrtc import LIVE_TIMEOUT, LiveBase  # noqa: E402

CHUNK = 16384


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def send(ch, **msg):
    ch.dc.send(json.dumps(msg))


PROGRESS = {}  # transfer id -> the gateway's file_progress byte counts


async def receive(ch):
    """The next message that is not a file_progress (those are kept)."""
    while True:
        m = await ch.receive()
        if isinstance(m, dict) and m.get("type") == "file_progress":
            PROGRESS.setdefault(m["id"], []).append(m["bytes"])
            continue
        return m


async def expect(ch, **fields):
    m = await receive(ch)
    for k, v in fields.items():
        if not isinstance(m, dict) or m.get(k) != v:
            raise AssertionError("expected %r, got %r" % (fields, m))
    return m


async def send_file(ch, fid, index, name, data, mime, **offer):
    """offer: other file_offer fields (kind, width, height); kind "file"
    unless given."""
    send(ch, **{"type": "file_offer", "id": fid, "index": index, "name": name,
                "size": len(data), "mime": mime, "sha256": sha256(data), "kind": "file", **offer})
    await expect(ch, type="file_accept", id=fid)
    for off in range(0, len(data), CHUNK):
        ch.dc.send(struct.pack(">IQ", index, off) + data[off:off + CHUNK])
        while ch.dc.bufferedAmount > 1 << 20:
            await asyncio.sleep(0.01)
    send(ch, type="file_done", id=fid)


async def receive_file(ch, fid):
    offer = await expect(ch, type="file_offer", id=fid)
    send(ch, type="file_accept", id=fid)
    data = bytearray()
    while True:
        m = await receive(ch)
        if isinstance(m, bytes):
            index, offset = struct.unpack(">IQ", m[:12])
            assert index == offer["index"] and offset == len(data), (index, offset)
            data += m[12:]
        elif m.get("type") == "file_done" and m.get("id") == fid:
            break
        else:
            raise AssertionError("unexpected %r" % m)
    send(ch, type="file_verified", id=fid, sha256=sha256(bytes(data)))
    return offer, bytes(data)


class Files(LiveBase):
    async def test_files_both_ways_stored_and_audited(self):
        session, t, v = await self.go_live(("file",), ("file",))
        tf, vf = t.channels["file"], v.channels["file"]
        await asyncio.gather(tf.open(), vf.open())
        png = b"\x89PNG\r\n\x1a\n" + os.urandom(2 << 20)
        pdf = b"%PDF-1.4\n" + os.urandom(40000)

        receiver = asyncio.ensure_future(receive_file(vf, "png-1"))
        await send_file(tf, "png-1", 1, "Ausweis Muster.png", png, "image/png")
        await expect(tf, type="file_verified", id="png-1", sha256=sha256(png))
        offer, got = await asyncio.wait_for(receiver, LIVE_TIMEOUT)
        self.assertEqual(sha256(got), sha256(png))
        self.assertEqual(offer["name"], "Ausweis Muster.png")

        receiver = asyncio.ensure_future(receive_file(tf, "pdf-1"))
        await send_file(vf, "pdf-1", 1, "Bescheid.pdf", pdf, "application/pdf")
        await expect(vf, type="file_verified", id="pdf-1", sha256=sha256(pdf))
        offer, got = await asyncio.wait_for(receiver, LIVE_TIMEOUT)
        self.assertEqual(sha256(got), sha256(pdf))

        exe = b"MZ\x90\x00" + os.urandom(20000)
        await send_file(tf, "exe-1", 2, "Rechnung.pdf", exe, "application/pdf")
        await expect(tf, type="file_error", id="exe-1", code="file_type_not_allowed")

        entries = await self.gw.audit_api(session=session)
        files = {e["detail"]["id"]: e["detail"] for e in entries if e.get("event") == "file"}
        self.assertEqual(set(files), {"png-1", "pdf-1"}, harness.describe_entries(entries))
        self.assertEqual(files["png-1"], {"id": "png-1", "sha256": sha256(png), "size": len(png),
                                          "mime": "image/png", "leg": "tablet", "kind": "file"})
        self.assertEqual(files["pdf-1"], {"id": "pdf-1", "sha256": sha256(pdf), "size": len(pdf),
                                          "mime": "application/pdf", "leg": "verifier",
                                          "kind": "file"})
        refused = [e["detail"] for e in entries if e.get("event") == "file_refused"]
        self.assertEqual(refused, [{"id": "exe-1", "leg": "tablet", "kind": "file",
                                    "code": "file_type_not_allowed"}],
                         harness.describe_entries(entries))
        # The evidence table: one row per stored file, the same hashes as the
        # audit, and the name (which the audit never holds), sealed for its
        # row (issue #11 item 10).
        with sqlite3.connect(self.gw.database) as db:
            rows = db.execute("SELECT file_id, leg, kind, name, mime, size, sha256, width, height "
                              "FROM evidence WHERE session_id = ? ORDER BY file_id",
                              (session,)).fetchall()
        for name in ("Bescheid", "Ausweis"):
            self.assertNotIn(name, repr(rows))
        rows = [r[:3] + (harness.open_sealed(self.gw.dir, "evidence.name:%s/%s" % (session, r[0]),
                                             r[3]),) + r[4:] for r in rows]
        self.assertEqual(rows, [
            ("pdf-1", "verifier", "file", "Bescheid.pdf", "application/pdf", len(pdf),
             sha256(pdf), None, None),
            ("png-1", "tablet", "file", "Ausweis Muster.png", "image/png", len(png),
             sha256(png), None, None)])
        # file_progress from the gateway while it stored the 2 MB file:
        # increasing, within the size.
        got = PROGRESS.get("png-1", [])
        self.assertTrue(got and got == sorted(got) and got[-1] <= len(png), got)
        dump = json.dumps(entries, ensure_ascii=False)
        for name in ("Ausweis Muster", "Bescheid", "Rechnung"):
            self.assertNotIn(name, dump, "file name in the audit log")

        sdir = self.gw.dir / "evidence" / "sessions" / session
        self.assertEqual(sorted(p.name for p in sdir.iterdir() if p.name != "transcript"),
                         ["pdf-1.ev", "png-1.ev"])
        for fid, data in (("png-1", png), ("pdf-1", pdf)):
            disk = (sdir / (fid + ".ev")).read_bytes()
            self.assertTrue(disk.startswith(b"MDEVFIL1"), disk[:16])
            self.assertNotIn(data[1000:1064], disk, "plaintext in the evidence store")

        await t.client.send({"type": "hangup", "session": session})
        for leg in (t, v):
            await leg.client.expect("ended", session=session)


    async def test_sender_gone_mid_file(self):
        """The tablet's connection ends in the middle of a file (its page
        closes the PeerConnection): the transfer is audited as file_refused
        with code sctp_failed, nothing of it is stored, and the session stays
        live for the tablet to come back within the grace period."""
        session, t, v = await self.go_live(("file",), ("file",))
        tf, vf = t.channels["file"], v.channels["file"]
        await asyncio.gather(tf.open(), vf.open())
        data = b"%PDF-1.4\n" + os.urandom(3 << 20)
        send(tf, type="file_offer", id="cut-1", index=1, name="Antrag.pdf", size=len(data),
             mime="application/pdf", sha256=sha256(data), kind="file")
        await expect(tf, type="file_accept", id="cut-1")
        for off in range(0, len(data) // 2, CHUNK):
            tf.dc.send(struct.pack(">IQ", 1, off) + data[off:off + CHUNK])
            while tf.dc.bufferedAmount > 1 << 20:
                await asyncio.sleep(0.01)
        while tf.dc.bufferedAmount:  # half the file has left the tablet
            await asyncio.sleep(0.01)
        await t.pc.close()

        refused = []
        for _ in range(int(LIVE_TIMEOUT * 10)):
            entries = await self.gw.audit_api(session=session)
            refused = [e["detail"] for e in entries if e.get("event") == "file_refused"]
            if refused:
                break
            await asyncio.sleep(0.1)
        self.assertEqual(refused, [{"id": "cut-1", "leg": "tablet", "kind": "file",
                                    "code": "sctp_failed"}], harness.describe_entries(entries))
        self.assertFalse(any(e.get("event") == "file" for e in entries))
        sdir = self.gw.dir / "evidence" / "sessions" / session
        left = [p.name for p in sdir.iterdir() if "cut-1" in p.name] if sdir.exists() else []
        self.assertEqual(left, [], "a partial file was kept")
        # The verifier's side goes on: no `ended` while the tablet may rejoin.
        await v.client.expect_none("ended", 1.0, session=session)
        await v.client.send({"type": "hangup", "session": session})
        await v.client.expect("ended", session=session)

if __name__ == "__main__":
    harness.main()
