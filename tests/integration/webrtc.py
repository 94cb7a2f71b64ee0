"""WebRTC legs for the integration tests: each participant is a real aiortc
peer (Debian python3-aiortc) that offers audio + video to the gateway,
applies its answer and candidates, and reaches ICE + DTLS-SRTP.

Loopback only: the gateway's ICE binds 127.0.0.1 (media.bind_address, set by
the harness), aiortc gathers on 127.0.0.1 alone (aioice skips loopback by
default, so the test narrows its address list), no STUN/TURN server is
configured, and candidates of the gateway on other addresses are ignored.
"""

import asyncio
import ipaddress
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aioice.ice  # noqa: E402

# Gather host candidates on loopback only (aioice leaves 127.0.0.1 out).
aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: (
    ["127.0.0.1"] if use_ipv4 else [])

from aiortc import (RTCConfiguration, RTCPeerConnection,  # noqa: E402
                    RTCSessionDescription)
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack  # noqa: E402
from aiortc.sdp import candidate_from_sdp  # noqa: E402

from harness import SLOW, GatewayTestCase  # noqa: E402

LIVE_TIMEOUT = 30 * SLOW


def loopback_candidate(candidate):
    """True for an `a=candidate` value whose address is a loopback one."""
    bits = candidate.split()
    if len(bits) < 8:
        return False
    try:
        return ipaddress.ip_address(bits[4]).is_loopback
    except ValueError:
        return False  # a hostname (mDNS) is not loopback


def loopback_only_sdp(sdp):
    lines = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:") and not loopback_candidate(line[len("a="):]
                                                                       .split(":", 1)[1]):
            continue
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


class DataChannel:
    """An in-band (DCEP) data channel of a leg, with a queue of the JSON
    messages it received, and of the binary ones as bytes (docs/protocol.md,
    "Data channels")."""

    def __init__(self, pc, label):
        loop = asyncio.get_event_loop()
        self.label = label
        self.dc = pc.createDataChannel(label)
        self.inbox = asyncio.Queue()
        self.opened = loop.create_future()
        self.closed = loop.create_future()
        self.dc.on("open", lambda: self.opened.done() or self.opened.set_result(True))
        self.dc.on("close", lambda: self.closed.done() or self.closed.set_result(True))
        # Binary messages (file chunks) are queued as bytes.
        self.dc.on("message", lambda m: self.inbox.put_nowait(
            json.loads(m) if isinstance(m, str) else m))

    async def open(self):
        await asyncio.wait_for(self.opened, LIVE_TIMEOUT)

    def chat(self, msg_id, text):
        self.dc.send(json.dumps({"type": "chat", "id": msg_id, "ts": int(time.time() * 1000),
                                 "text": text}))

    async def receive(self):
        return await asyncio.wait_for(self.inbox.get(), LIVE_TIMEOUT)


class Leg:
    """One participant: a signaling client plus an aiortc peer connection.
    channels: labels of data channels created before the offer (so that the
    offer carries the data m-line), in self.channels by label; video: the
    track to send (default: aiortc's test pattern)."""

    def __init__(self, client, session, channels=(), video=None):
        self.client = client
        self.session = session
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.tracks = asyncio.Queue()
        self.pc.on("track", lambda track: self.tracks.put_nowait(track))
        self.video = video or VideoStreamTrack()
        self.pc.addTrack(self.video)
        self.pc.addTrack(AudioStreamTrack())
        self.channels = {label: DataChannel(self.pc, label) for label in channels}
        self.candidate_task = None
        self.remote_candidates = []

    async def offer(self):
        await self.pc.setLocalDescription(await self.pc.createOffer())  # gathers everything
        sdp = self.pc.localDescription.sdp
        assert "a=group:BUNDLE" in sdp and "a=rtcp-mux" in sdp, sdp
        await self.client.send({"type": "offer", "session": self.session, "sdp": sdp})
        # aiortc does not trickle: all our candidates are in the offer
        await self.client.send({"type": "candidate", "session": self.session,
                                "candidate": None, "mid": "0"})

    async def apply_answer(self):
        answer = await self.client.expect(
            None, timeout=LIVE_TIMEOUT, session=self.session,
            pred=lambda m: m.get("type") in ("answer", "error", "ended"))
        assert answer["type"] == "answer", "%s instead of an answer\n%s" % (
            answer, self.client.transcript())
        sdp = answer.get("sdp", "")
        assert sdp.startswith("v=0"), answer
        await self.pc.setRemoteDescription(
            RTCSessionDescription(sdp=loopback_only_sdp(sdp), type="answer"))
        self.candidate_task = asyncio.create_task(self.take_candidates())
        return sdp

    async def take_candidates(self):
        while True:
            m = await self.client.expect("candidate", session=self.session, timeout=3600)
            value = m.get("candidate")
            if value is None:
                continue  # end of candidates
            if value.startswith("candidate:"):
                value = value[len("candidate:"):]
            self.remote_candidates.append(value)
            if not loopback_candidate(value):
                continue
            cand = candidate_from_sdp(value)
            cand.sdpMid = m.get("mid") or "0"
            await self.pc.addIceCandidate(cand)

    async def close(self):
        if self.candidate_task:
            self.candidate_task.cancel()
            try:
                await self.candidate_task
            except (asyncio.CancelledError, AssertionError):
                pass
        try:
            # aiortc's close waits for its own tasks; never let a stuck one
            # hold the test (the gateway's side is what the tests check).
            await asyncio.wait_for(self.pc.close(), 10 * SLOW)
        except asyncio.TimeoutError:
            sys.stderr.write("%s: aiortc's close did not finish in %d s\n"
                             % (self.client.name, 10 * SLOW))


class LiveBase(GatewayTestCase):
    """Helpers for tests whose legs are real aiortc peers (no tests here)."""

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.legs = []

    async def asyncTearDown(self):
        for leg in self.legs:
            await leg.close()
        await super().asyncTearDown()

    async def assigned_session(self, tablet_channels=(), verifier_channels=()):
        verifier = await self.staff("v-yasuoka")
        tablet = await self.device("TAB-NUKUTA-1")
        session = (await self.request(tablet))["session"]
        await verifier.send({"type": "accept", "session": session})
        await tablet.expect("assigned", session=session)
        await verifier.expect("assigned", session=session)
        t = Leg(tablet, session, tablet_channels)
        v = Leg(verifier, session, verifier_channels)
        self.legs += [t, v]
        return session, t, v

    async def media_seen(self, session, v):
        """Waits until the gateway reports media sent on the verifier's leg
        (a `quality` with counters.packets_out > 0): only then does it take
        `outcome` `verified` (docs/protocol.md, media_not_seen)."""
        await v.client.expect(
            "quality", session=session, leg="verifier", timeout=LIVE_TIMEOUT,
            pred=lambda m: m.get("stats", {}).get("counters", {}).get("packets_out", 0) > 0)

    async def go_live(self, tablet_channels=(), verifier_channels=()):
        session, t, v = await self.assigned_session(tablet_channels, verifier_channels)
        await asyncio.gather(t.offer(), v.offer())
        for leg in (t, v):
            await leg.client.expect("state", session=session, state="connecting",
                                    timeout=LIVE_TIMEOUT)
        answers = await asyncio.gather(t.apply_answer(), v.apply_answer())
        for sdp in answers:
            self.assertIn("a=group:BUNDLE", sdp)
            self.assertIn("a=fingerprint:sha-256", sdp)
            self.assertIn("a=setup:", sdp)
        # both answers use the same video codec: nothing is transcoded
        codecs = [sorted({line.split()[1].split("/")[0].upper() for line in sdp.splitlines()
                          if line.startswith("a=rtpmap:") and ("VP8" in line or "H264" in line
                                                                or "VP9" in line or "AV1" in line)})
                  for sdp in answers]
        self.assertEqual(codecs[0], codecs[1], codecs)
        self.assertEqual(len(codecs[0]), 1, "one video codec chosen: %s" % codecs)
        for leg in (t, v):
            await leg.client.expect("state", session=session, state="live",
                                    timeout=LIVE_TIMEOUT)
        # The gateway (DTLS server) is connected once it sent its last flight;
        # the client only once that flight arrived: wait for it briefly.
        for leg in (t, v):
            for _ in range(int(LIVE_TIMEOUT * 20)):
                if leg.pc.connectionState != "connecting":
                    break
                await asyncio.sleep(0.05)
            self.assertEqual(leg.pc.connectionState, "connected", leg.client.name)
        return session, t, v
