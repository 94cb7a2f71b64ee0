#!/usr/bin/python3
"""Real WebRTC peers (aiortc) relayed through the gateway, over loopback only.

Two aiortc RTCPeerConnections play the tablet and the verifier.  Each offers
audio (Opus) and video to tests/media/media_peer (one md_media session), gets
the gateway's answer, and must reach ICE + DTLS-SRTP "connected"; then each
must decode video frames that the *other* peer sent, which proves the whole
relay path: unprotect, rewrite, protect, send, and the keyframe request sent
when a leg connects.

Modes:
  relay      both peers offer VP8 + H264; frames must flow both ways
  mismatch   the tablet offers only VP8, the verifier only H264: both legs
             must fail with codec_mismatch and nobody may get an answer
  renegotiate  relay, then the tablet offers again on the live session (same
             ICE credentials: aiortc 1.4 cannot restart ICE) and must get a
             second answer while frames keep flowing

Usage: aiortc_relay.py <path to media_peer> <mode>
"""
import asyncio
import json
import os
import sys
import traceback

import aioice.ice

# Loopback only (DESIGN 8): aioice would otherwise gather every interface.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

from aiortc import (RTCConfiguration, RTCPeerConnection,  # noqa: E402
                    RTCRtpSender, RTCSessionDescription)
from aiortc.contrib.media import MediaBlackhole  # noqa: E402
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack  # noqa: E402

TIMEOUT = 30


class Gateway:
    """media_peer's event stream.  Events that a wait() skipped are kept (all
    but the periodic `quality`), so a later wait() still finds an event that
    arrived before the one an earlier wait() was looking for."""

    def __init__(self, proc):
        self.proc = proc
        self.setup()
        self.reader = asyncio.ensure_future(self._read())

    def setup(self):
        """State that _read() fills; a subclass routing events otherwise
        overrides both."""
        self.events = asyncio.Queue()
        self.backlog = []

    async def _read(self):
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                await self.events.put(None)
                return
            await self.events.put(json.loads(line))

    def send(self, **msg):
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())

    async def wait(self, pred, what):
        """The first event matching pred, within TIMEOUT in all (periodic
        events must not stretch the deadline)."""
        for i, ev in enumerate(self.backlog):
            if pred(ev):
                return self.backlog.pop(i)
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                ev = await asyncio.wait_for(self.events.get(), max(remaining, 0))
            except asyncio.TimeoutError:
                raise AssertionError("timeout waiting for " + what) from None
            if ev is None:
                raise AssertionError("gateway exited while waiting for " + what)
            print("gateway:", {k: v for k, v in ev.items() if k != "sdp"}, flush=True)
            if pred(ev):
                return ev
            if ev["event"] in ("failed", "refused"):
                raise AssertionError("unexpected failure: %r" % ev)
            if ev["event"] != "quality":
                self.backlog.append(ev)

    async def stop(self):
        """Closes media_peer's stdin and waits for it to exit; kills it if it
        does not, so no process outlives the test.  Returns its exit code."""
        self.proc.stdin.close()
        try:
            rc = await asyncio.wait_for(self.proc.wait(), TIMEOUT)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            rc = "killed: no exit within %d s of stdin EOF" % TIMEOUT
        self.reader.cancel()
        return rc


async def with_media_peer(peer_path, body, gateway=None, env=None):
    """Starts media_peer, runs body(gw) against it, then closes its stdin;
    media_peer must exit 0 (it is killed if it does not exit)."""
    proc = await asyncio.create_subprocess_exec(
        peer_path, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env)
    gw = (gateway or Gateway)(proc)
    try:
        await body(gw)
    finally:
        rc = await gw.stop()
    assert rc == 0, "media_peer exited with %s" % rc


def run_main(coro):
    """asyncio.run(coro), but a failure exits at once: after an exception,
    aiortc's leftover tasks and encoder threads can keep the interpreter from
    ending, and the test would hang until its timeout."""
    try:
        asyncio.run(coro)
    except BaseException:
        traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


async def close_peers(*pcs):
    """aiortc's close() has no timeout of its own."""
    for pc in pcs:
        if pc.sink:
            await pc.sink.stop()
        await asyncio.wait_for(pc.close(), TIMEOUT)


def make_peer(name, codec=None, drain=False):
    """An aiortc peer sending audio and video.  With drain, received media is
    consumed and discarded: aiortc queues every decoded frame of a remote
    track until someone reads it, so a test that reads none would grow by
    ~14 MB/s."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(AudioStreamTrack())
    video = pc.addTransceiver(VideoStreamTrack(), direction="sendrecv")
    if codec:
        caps = RTCRtpSender.getCapabilities("video")
        video.setCodecPreferences([c for c in caps.codecs if c.mimeType == "video/" + codec])
    pc.received = asyncio.get_event_loop().create_future()
    pc.sink = MediaBlackhole() if drain else None

    @pc.on("track")
    def on_track(track):
        if pc.sink:
            pc.sink.addTrack(track)
            asyncio.ensure_future(pc.sink.start())
        elif track.kind == "video" and not pc.received.done():
            pc.received.set_result(track)

    pc.name = name
    return pc


async def offer(gw, pc):
    await pc.setLocalDescription(await pc.createOffer())
    gw.send(op="offer", leg=pc.name, sdp=pc.localDescription.sdp)


async def answered(gw, pc):
    ev = await gw.wait(lambda e: e["event"] == "answer" and e["leg"] == pc.name, "answer")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=ev["sdp"], type="answer"))
    return ev["sdp"]


async def frames(pc, n):
    track = await asyncio.wait_for(pc.received, TIMEOUT)
    sizes = set()
    for _ in range(n):
        frame = await asyncio.wait_for(track.recv(), TIMEOUT)
        sizes.add((frame.width, frame.height))
    return sizes


async def connect_pair(gw, tablet, verifier):
    await offer(gw, tablet)
    await offer(gw, verifier)
    answers = {}
    for pc in (tablet, verifier):
        answers[pc.name] = await answered(gw, pc)
    connected = set()
    while connected != {"tablet", "verifier"}:
        ev = await gw.wait(lambda e: e["event"] == "connected", "connected")
        connected.add(ev["leg"])
    return answers


async def relay(gw, renegotiate=False):
    tablet, verifier = make_peer("tablet"), make_peer("verifier")
    answers = await connect_pair(gw, tablet, verifier)
    for name, sdp in answers.items():
        assert "a=setup:passive" in sdp, name
        assert "VP8/90000" in sdp and "opus/48000/2" in sdp, name
    for pc in (tablet, verifier):
        sizes = await frames(pc, 10)
        assert sizes == {(640, 480)}, sizes
        print(pc.name, "decoded 10 relayed frames", sizes, flush=True)
    if renegotiate:
        await offer(gw, tablet)
        sdp = await answered(gw, tablet)
        assert "VP8/90000" in sdp
        assert await frames(verifier, 10) == {(640, 480)}
        print("frames still flow after renegotiation", flush=True)
    await close_peers(tablet, verifier)


async def mismatch(gw):
    tablet, verifier = make_peer("tablet", "VP8"), make_peer("verifier", "H264")
    await offer(gw, tablet)
    await offer(gw, verifier)
    failed = {}
    while len(failed) < 2:
        ev = await gw.wait(lambda e: e["event"] in ("failed", "answer"), "failed")
        assert ev["event"] == "failed", "an answer was sent despite the mismatch"
        failed[ev["leg"]] = ev
    for ev in failed.values():
        assert ev["error"] == "codec_mismatch", ev
        assert "tablet offers VP8" in ev["detail"] and "verifier offers H264" in ev["detail"], ev
    print("refused:", failed["tablet"]["detail"], flush=True)
    await close_peers(tablet, verifier)


async def main(peer_path, mode):
    if mode == "mismatch":
        await with_media_peer(peer_path, mismatch)
    else:
        await with_media_peer(peer_path,
                              lambda gw: relay(gw, renegotiate=(mode == "renegotiate")))
    print("ok", mode, flush=True)


if __name__ == "__main__":
    run_main(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "relay"))
