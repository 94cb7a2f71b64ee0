#!/usr/bin/python3
"""File transfer over real WebRTC data channels (aiortc) through the gateway's
md_media, over loopback only (docs/internals/datachannels.md, "Files through
the session").

Two aiortc peers play the tablet and the verifier; each opens a "file" data
channel before its offer.  tests/media/media_peer runs with an evidence store
in a temporary directory (MD_EVIDENCE_DIR) and a 3 MiB cap
(MD_MAX_FILE_BYTES), and delivers every "file" event to the other leg at
once, as the control thread does after its audit.

The gateway checks types by magic bytes only, so the test files are the magic
followed by random bytes: a PNG signature + an IHDR chunk + 2 MB of random
data, and "%PDF-1.4" + random data.  They are not viewable images or
documents, and need not be.

Modes:
  transfer  a 2 MB PNG tablet -> verifier and a small PDF verifier -> tablet
            arrive byte-identical (SHA-256 compared); the sender gets
            file_verified; the evidence file exists and does not hold the
            plaintext
  refused   over the cap -> file_refuse{file_too_large}; an EXE (MZ) named
            .pdf -> file_error{file_type_not_allowed}; a wrong hash ->
            file_error{file_hash_mismatch}; a transfer cut by closing the
            tablet's connection; none of them leaves a file in the store
  reoffer   the verifier is offered a file and reloads (a new PeerConnection)
            before answering: the file is offered again on the new one and
            arrives byte-identical

Usage: aiortc_file.py <path to media_peer> <mode>
"""
import asyncio
import hashlib
import json
import os
import struct
import sys
import tempfile
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aiortc_chat import connect_pair  # noqa: E402
from aiortc_relay import (TIMEOUT, answered, close_peers, make_peer, run_main,  # noqa: E402
                          with_media_peer)

CAP = 3 << 20
CHUNK = 16384


def png_bytes(size):
    ihdr = struct.pack(">IIBBBBB", 1024, 512, 8, 2, 0, 0, 0)
    head = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr +
            struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))
    return head + os.urandom(size - len(head))


def pdf_bytes(size):
    head = b"%PDF-1.4\n"
    return head + os.urandom(size - len(head))


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class FileChannel:
    """An aiortc "file" channel: JSON control messages in inbox, chunks of
    the transfer being received gathered in incoming."""

    def __init__(self, pc):
        self.dc = pc.createDataChannel("file")
        self.inbox = asyncio.Queue()
        self.progress = {}  # transfer id -> the gateway's file_progress byte counts
        self.incoming = bytearray()
        self.opened = asyncio.get_event_loop().create_future()
        self.dc.on("open", lambda: self.opened.done() or self.opened.set_result(True))
        self.dc.on("message", self._on_message)

    def _on_message(self, m):
        if isinstance(m, bytes):
            index, offset = struct.unpack(">IQ", m[:12])
            assert offset == len(self.incoming), (offset, len(self.incoming))
            self.incoming += m[12:]
        else:
            msg = json.loads(m)
            if msg.get("type") == "file_progress":
                self.progress.setdefault(msg["id"], []).append(msg["bytes"])
            else:
                self.inbox.put_nowait(msg)

    def send(self, **msg):
        self.dc.send(json.dumps(msg))

    async def expect(self, **fields):
        m = await asyncio.wait_for(self.inbox.get(), TIMEOUT)
        for k, v in fields.items():
            assert m.get(k) == v, "expected %r, got %r" % (fields, m)
        return m

    def offer(self, fid, index, name, data, mime, digest=None):
        self.send(type="file_offer", id=fid, index=index, name=name, size=len(data), mime=mime,
                  sha256=digest or sha256(data), kind="file")

    async def chunks(self, index, data, stop=None):
        for off in range(0, len(data) if stop is None else stop, CHUNK):
            self.dc.send(struct.pack(">IQ", index, off) + data[off:off + CHUNK])
            while self.dc.bufferedAmount > 1 << 20:  # aiortc buffers without bound
                await asyncio.sleep(0.01)

    async def send_file(self, fid, index, name, data, mime, digest=None):
        self.offer(fid, index, name, data, mime, digest)
        await self.expect(type="file_accept", id=fid)
        await self.chunks(index, data)
        self.send(type="file_done", id=fid)

    async def receive_file(self, fid):
        offer = await self.expect(type="file_offer", id=fid)
        self.incoming = bytearray()
        self.send(type="file_accept", id=fid)
        await self.expect(type="file_done", id=fid)
        data = bytes(self.incoming)
        assert len(data) == offer["size"], (len(data), offer)
        assert sha256(data) == offer["sha256"], offer
        self.send(type="file_verified", id=fid, sha256=offer["sha256"])
        return offer, data


def stored(ev_dir, fid):
    """Every file of the store's session s1 that belongs to transfer fid."""
    sdir = Path(ev_dir) / "sessions" / "s1"
    if not sdir.exists():
        return []
    return [p.name for p in sdir.iterdir() if p.name in (fid + ".ev", "." + fid + ".tmp")]


async def file_event(gw, leg, fid):
    return await gw.wait(lambda e: e["event"] == "file" and e["leg"] == leg and e["id"] == fid,
                         "file from " + leg)


async def transfer(gw, ev_dir, t_file, v_file):
    png = png_bytes(2 << 20)
    pdf = pdf_bytes(50 * 1024 + 7)
    sender = asyncio.ensure_future(t_file.send_file("png-1", 1, "Ausweis.png", png, "image/png"))
    receiver = asyncio.ensure_future(v_file.receive_file("png-1"))
    ev = await file_event(gw, "tablet", "png-1")
    assert ev["sha256"] == sha256(png) and ev["size"] == len(png), ev
    assert ev["mime"] == "image/png" and ev["name"] == "Ausweis.png", ev
    await sender
    await t_file.expect(type="file_verified", id="png-1", sha256=sha256(png))
    offer, got = await receiver
    assert got == png and offer["name"] == "Ausweis.png" and offer["mime"] == "image/png", offer
    print("2 MB PNG tablet -> verifier byte-identical", flush=True)

    receiver = asyncio.ensure_future(t_file.receive_file("pdf-1"))
    await v_file.send_file("pdf-1", 1, "Bescheid.pdf", pdf, "application/pdf")
    await file_event(gw, "verifier", "pdf-1")
    await v_file.expect(type="file_verified", id="pdf-1", sha256=sha256(pdf))
    offer, got = await receiver
    assert got == pdf and offer["mime"] == "application/pdf", offer
    print("PDF verifier -> tablet byte-identical", flush=True)

    for fid, data in (("png-1", png), ("pdf-1", pdf)):
        assert stored(ev_dir, fid) == [fid + ".ev"], stored(ev_dir, fid)
        disk = (Path(ev_dir) / "sessions" / "s1" / (fid + ".ev")).read_bytes()
        assert disk.startswith(b"MDEVFIL1") and data[1000:1064] not in disk
    print("evidence stored encrypted", flush=True)


async def refused(gw, ev_dir, tablet, t_file):
    big = png_bytes(CAP + 1)
    t_file.offer("big-1", 1, "big.png", big, "image/png")
    await t_file.expect(type="file_refuse", id="big-1", code="file_too_large")
    print("over the cap: file_refuse file_too_large", flush=True)

    exe = b"MZ\x90\x00" + os.urandom(40000)
    await t_file.send_file("exe-1", 2, "Rechnung.pdf", exe, "application/pdf")
    await t_file.expect(type="file_error", id="exe-1", code="file_type_not_allowed")
    print("EXE named .pdf: file_error file_type_not_allowed", flush=True)

    pdf = pdf_bytes(30000)
    await t_file.send_file("hash-1", 3, "a.pdf", pdf, "application/pdf", digest=sha256(b"other"))
    await t_file.expect(type="file_error", id="hash-1", code="file_hash_mismatch")
    print("wrong hash: file_error file_hash_mismatch", flush=True)

    for fid in ("big-1", "exe-1", "hash-1"):
        assert stored(ev_dir, fid) == [], (fid, stored(ev_dir, fid))

    cut = png_bytes(1 << 20)
    t_file.offer("cut-1", 4, "cut.png", cut, "image/png")
    await t_file.expect(type="file_accept", id="cut-1")
    await t_file.chunks(4, cut, stop=len(cut) // 2)
    await asyncio.sleep(0.5)
    await tablet.close()  # mid-file: checked once the gateway has exited


async def reoffered(gw, t_file, verifier, v_file):
    """The verifier is offered a file but reloads before answering: the
    same file is offered again on its new PeerConnection's channel."""
    png = png_bytes(300 * 1024)
    sender = asyncio.ensure_future(t_file.send_file("png-r", 1, "Ausweis.png", png, "image/png"))
    await file_event(gw, "tablet", "png-r")
    await sender
    await t_file.expect(type="file_verified", id="png-r", sha256=sha256(png))
    await v_file.expect(type="file_offer", id="png-r")
    await close_peers(verifier)  # offered, not answered
    await gw.wait(lambda e: e["event"] == "failed" and e["leg"] == "verifier",
                  "the old verifier connection closed")
    verifier = make_peer("verifier", drain=True)
    v_file = FileChannel(verifier)
    await verifier.setLocalDescription(await verifier.createOffer())
    gw.send(op="offer", leg="verifier", sdp=verifier.localDescription.sdp)
    await answered(gw, verifier)
    await asyncio.wait_for(v_file.opened, TIMEOUT)
    offer, got = await v_file.receive_file("png-r")
    assert got == png and offer["name"] == "Ausweis.png", offer
    print("unanswered file offered again after the verifier reloaded", flush=True)
    await close_peers(verifier)


async def run(gw, mode, ev_dir):
    tablet, verifier = make_peer("tablet", drain=True), make_peer("verifier", drain=True)
    t_file, v_file = FileChannel(tablet), FileChannel(verifier)
    await connect_pair(gw, tablet, verifier)
    for ch in (t_file, v_file):
        await asyncio.wait_for(ch.opened, TIMEOUT)
    if mode == "transfer":
        await transfer(gw, ev_dir, t_file, v_file)
    elif mode == "reoffer":
        await reoffered(gw, t_file, verifier, v_file)
        await close_peers(tablet)
        return
    else:
        await refused(gw, ev_dir, tablet, t_file)
    await close_peers(tablet, verifier)


async def main(peer_path, mode):
    with tempfile.TemporaryDirectory() as ev_dir:
        env = dict(os.environ, MD_EVIDENCE_DIR=ev_dir, MD_MAX_FILE_BYTES=str(CAP))
        await with_media_peer(peer_path, lambda gw: run(gw, mode, ev_dir), env=env)
        if mode == "refused":
            assert stored(ev_dir, "cut-1") == [], stored(ev_dir, "cut-1")
            print("transfer cut mid-file: nothing stored", flush=True)
    print("ok", mode, flush=True)


if __name__ == "__main__":
    run_main(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "transfer"))
