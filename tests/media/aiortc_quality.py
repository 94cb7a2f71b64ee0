#!/usr/bin/python3
"""Quality, loss recovery, keyframes on (re)connect and concurrency, with real
aiortc peers relayed through tests/media/media_peer over 127.0.0.1 only.

Each peer is an aiortc RTCPeerConnection sending Opus and VP8.  The gateway
reports MD_MEDIA_QUALITY events once a second per connected leg; media_peer
prints them as {"event":"quality","session","leg","stats"} lines, and the
assertions below read the figures and counters from there.  No assertion is
about wall-clock speed: time limits only bound how long we wait.

Modes:
  quality      stats shape and values: 640x480 VP8 at about 30 fps, a round
               trip from our own sender reports, no loss
  loss         the verifier drops the first copy of every 20th incoming video
               packet (5 %) before SRTP: it NACKs, the gateway answers from
               its buffer, and the verifier keeps decoding
  loss_sender  the tablet drops the first send of every 20th video packet
               (5 %) before SRTP protect: the gateway sees the gap, NACKs the
               tablet itself, the retransmission is relayed, the verifier
               keeps decoding
  late         the verifier's answer is applied only after the tablet has
               sent for 2 s, so its leg connects late; as below, it never
               sends PLI itself and must still decode at once
  rejoin       the verifier leaves and a new verifier PeerConnection (new DTLS
               fingerprint) joins the running session; it never sends PLI
               itself, and aiortc's VP8 encoder makes keyframes only on
               request (kf_max_dist 3000 frames), so the frames it decodes come
               from the keyframe the gateway asks the tablet for on connect
  concurrency  20 sessions (40 peers, audio + 160x120 video) at once through
               one md_media: all connect, every peer decodes frames; after
               closing them the gateway's fd and thread counts return to the
               baseline taken before the sessions

Usage: aiortc_quality.py <path to media_peer> <mode>
"""
import asyncio
import fractions
import json
import sys
import time

import aiortc_relay as relay  # first: it narrows aioice to loopback (DESIGN 8)
import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs import vpx
from aiortc_relay import run_main
from aiortc.mediastreams import (AudioStreamTrack, MediaStreamTrack,
                                 VideoStreamTrack)

TIMEOUT = 30
DROP_EVERY = 20  # 5 %
PEERS = []  # every peer made, closed at the end even when a test fails


class Gateway(relay.Gateway):
    """media_peer's event stream, routed per session (send() and stop() as
    in aiortc_relay)."""

    def setup(self):
        self.queues = {}
        self.quality = {}  # (session, leg) -> list of stats
        self.resources = asyncio.Queue()

    def queue(self, session):
        return self.queues.setdefault(session, asyncio.Queue())

    async def _read(self):
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                for q in self.queues.values():
                    await q.put(None)
                return
            ev = json.loads(line)
            if ev["event"] == "quality":
                self.quality.setdefault((ev["session"], ev["leg"]), []).append(ev["stats"])
            elif ev["event"] == "resources":
                await self.resources.put(ev)
            else:
                await self.queue(ev.get("session", "s1")).put(ev)

    async def wait(self, session, pred, what, verbose=True):
        q = self.queue(session)
        while True:
            ev = await asyncio.wait_for(q.get(), TIMEOUT)
            if ev is None:
                raise AssertionError("gateway exited while waiting for " + what)
            if verbose:
                print("gateway:", {k: v for k, v in ev.items() if k != "sdp"}, flush=True)
            if ev["event"] in ("failed", "refused") and not pred(ev):
                raise AssertionError("unexpected failure: %r" % ev)
            if pred(ev):
                return ev

    def last_quality(self, session, leg):
        got = self.quality.get((session, leg))
        return got[-1] if got else None

    async def quality_after(self, session, leg, count):
        """Waits until more than count quality events exist for the leg."""
        for _ in range(TIMEOUT * 10):
            if len(self.quality.get((session, leg), [])) > count:
                return self.quality[(session, leg)][-1]
            await asyncio.sleep(0.1)
        raise AssertionError("no quality event for %s/%s" % (session, leg))

    async def quality_until(self, session, leg, pred, what):
        """Waits for a quality event of the leg that satisfies pred."""
        for _ in range(TIMEOUT * 10):
            got = self.quality.get((session, leg))
            if got and pred(got[-1]):
                return got[-1]
            await asyncio.sleep(0.1)
        raise AssertionError("%s/%s never reported %s: %r" % (session, leg, what,
                                                              self.last_quality(session, leg)))

    async def resource_counts(self):
        self.send(op="resources")
        ev = await asyncio.wait_for(self.resources.get(), TIMEOUT)
        return ev["fds"], ev["threads"]


class SmallVideoTrack(MediaStreamTrack):
    """160x120 at 10 fps: enough to prove the relay, cheap for 40 peers."""
    kind = "video"

    def __init__(self):
        super().__init__()
        self.start = None
        self.n = 0

    async def recv(self):
        if self.start is None:
            self.start = time.time()
        self.n += 1
        wait = self.start + self.n * 0.1 - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = av.VideoFrame(width=160, height=120, format="yuv420p")
        for p in frame.planes:
            p.update(bytes([self.n % 256]) * p.buffer_size)
        frame.pts = self.n * 9000
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


def make_peer(name, session="s1", small=False):
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(AudioStreamTrack())
    pc.addTransceiver(SmallVideoTrack() if small else VideoStreamTrack(), direction="sendrecv")
    PEERS.append(pc)
    pc.name = name
    pc.session = session
    pc.decoded = 0
    pc.sizes = set()
    pc.first_frame = asyncio.get_event_loop().create_future()

    @pc.on("track")
    def on_track(track):
        if track.kind == "video":
            pc.counter = asyncio.ensure_future(count_frames(pc, track))

    return pc


async def count_frames(pc, track):
    try:
        while True:
            frame = await track.recv()
            pc.decoded += 1
            pc.sizes.add((frame.width, frame.height))
            if not pc.first_frame.done():
                pc.first_frame.set_result(time.monotonic())
    except Exception:  # the track ends when the peer closes
        return


async def offer(gw, pc):
    await pc.setLocalDescription(await pc.createOffer())
    gw.send(op="offer", session=pc.session, leg=pc.name, sdp=pc.localDescription.sdp)


async def answered(gw, pc, verbose=True):
    ev = await gw.wait(pc.session, lambda e: e["event"] == "answer" and e["leg"] == pc.name,
                       "answer", verbose)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=ev["sdp"], type="answer"))
    return ev["sdp"]


async def connected(gw, session, legs, verbose=True):
    seen = set()
    while seen != set(legs):
        ev = await gw.wait(session, lambda e: e["event"] == "connected", "connected", verbose)
        seen.add(ev["leg"])


async def connect_pair(gw, tablet, verifier, verbose=True):
    await offer(gw, tablet)
    await offer(gw, verifier)
    for pc in (tablet, verifier):
        await answered(gw, pc, verbose)
    await connected(gw, tablet.session, ("tablet", "verifier"), verbose)


async def decoded_at_least(pc, n, gw=None):
    for _ in range(TIMEOUT * 10):
        if pc.decoded >= n:
            return
        await asyncio.sleep(0.1)
    # what the gateway saw of the session, and what the peers dropped on purpose
    seen = {leg: (gw.last_quality(pc.session, leg) or {}).get("counters")
            for leg in ("tablet", "verifier")} if gw else {}
    dropped = sorted(getattr(pc, "dropped", ()))
    raise AssertionError("%s decoded %d frames, wanted %d; gateway counters %s; dropped %s"
                         % (pc.name, pc.decoded, n, json.dumps(seen), dropped))


def video_pt(sdp):
    for line in sdp.splitlines():
        if line.startswith("m=video"):
            return int(line.split()[3])
    raise AssertionError("no video m-line")


def ice_transport(pc):
    return pc.getTransceivers()[1].receiver.transport.transport


def drop_incoming_video(pc, pt):
    """Drops the first copy of every DROP_EVERY-th video packet as it arrives,
    before SRTP: the gateway's retransmission then passes the replay check."""
    ice = ice_transport(pc)
    recv = ice._recv
    pc.dropped = set()

    async def lossy_recv():
        while True:
            data = await recv()
            if (len(data) >= 12 and 127 < data[0] < 192 and (data[1] & 0x7F) == pt
                    and not 192 <= data[1] <= 223):
                seq = data[2] << 8 | data[3]
                if seq % DROP_EVERY == 0 and seq not in pc.dropped:
                    pc.dropped.add(seq)
                    continue
            return data

    ice._recv = lossy_recv


def drop_outgoing_video(pc, pt):
    """Skips the first send of every DROP_EVERY-th video packet, before SRTP
    protect; aiortc's retransmission of it (on NACK) goes out."""
    dtls = pc.getTransceivers()[1].sender.transport
    send = dtls._send_rtp
    pc.dropped = set()

    async def lossy_send(data):
        if len(data) >= 12 and (data[1] & 0x7F) == pt:
            seq = data[2] << 8 | data[3]
            if seq % DROP_EVERY == 0 and seq not in pc.dropped:
                pc.dropped.add(seq)
                return
        await send(data)

    dtls._send_rtp = lossy_send


def check_shape(stats, leg):
    assert stats["leg"] == leg and stats["direction"] == "in", stats
    for key in ("kbps", "fps", "width", "height", "packets", "lost", "loss_pct",
                "loss_pct_total", "jitter_ms", "codec"):
        assert key in stats["video"], key
    for key in ("kbps", "packets", "lost", "loss_pct", "loss_pct_total", "jitter_ms"):
        assert key in stats["audio"], key
    for key in ("packets_in", "packets_out", "dropped_malformed", "dropped_oversize",
                "nack_received", "nack_answered", "nack_missed", "nack_sent",
                "pli_fir_received", "pli_fir_forwarded", "keyframe_requests_sent",
                "sr_sent"):
        assert key in stats["counters"], key
    assert "rtt_ms" in stats


async def quality(gw):
    tablet, verifier = make_peer("tablet"), make_peer("verifier")
    await connect_pair(gw, tablet, verifier)
    await decoded_at_least(verifier, 60)
    await decoded_at_least(tablet, 60)
    for leg in ("tablet", "verifier"):
        n = len(gw.quality.get(("s1", leg), []))
        # two more intervals, so that the RRs answering our SRs are in
        await gw.quality_after("s1", leg, n + 2)
        stats = gw.last_quality("s1", leg)
        print(leg, json.dumps(stats), flush=True)
        check_shape(stats, leg)
        v, a = stats["video"], stats["audio"]
        assert v["codec"] == "VP8", v
        assert (v["width"], v["height"]) == (640, 480), v
        assert 10 <= v["fps"] <= 40, v  # aiortc paces 30 fps; loose bounds
        assert v["kbps"] > 0 and a["kbps"] > 0 and a["packets"] > 0, stats
        assert v["loss_pct_total"] == 0 and a["loss_pct_total"] == 0, stats
        assert v["jitter_ms"] >= 0 and a["jitter_ms"] >= 0, stats
        assert stats["rtt_ms"] is not None and 0 <= stats["rtt_ms"] < 1000, stats
        c = stats["counters"]
        assert c["sr_sent"] > 0 and c["packets_in"] > 0 and c["packets_out"] > 0, c
        assert c["dropped_malformed"] == 0 and c["dropped_oversize"] == 0, c
    for pc in (tablet, verifier):
        await pc.close()


async def loss(gw, sender_side):
    tablet, verifier = make_peer("tablet"), make_peer("verifier")
    await offer(gw, tablet)
    await offer(gw, verifier)
    t_sdp = await answered(gw, tablet)
    v_sdp = await answered(gw, verifier)
    lossy = tablet if sender_side else verifier
    if sender_side:
        drop_outgoing_video(tablet, video_pt(t_sdp))
    else:
        drop_incoming_video(verifier, video_pt(v_sdp))
    await connected(gw, "s1", ("tablet", "verifier"))
    try:
        await decoded_at_least(verifier, 30, gw)
        at = verifier.decoded
        await decoded_at_least(verifier, at + 90, gw)  # about 3 s more while losing 5 %
    except AssertionError as e:
        raise AssertionError("%s; the lossy peer dropped %s" % (e, sorted(lossy.dropped)))
    n = len(gw.quality.get(("s1", "verifier"), []))
    await gw.quality_after("s1", "verifier", n + 1)
    await gw.quality_after("s1", "tablet", len(gw.quality.get(("s1", "tablet"), [])) + 1)
    ver, tab = gw.last_quality("s1", "verifier"), gw.last_quality("s1", "tablet")
    print("verifier", json.dumps(ver["counters"]), flush=True)
    print("tablet", json.dumps(tab["counters"]), json.dumps(tab["video"]), flush=True)
    print("dropped %d video packets, verifier decoded %d frames" % (len(lossy.dropped),
                                                                      verifier.decoded),
          flush=True)
    assert len(lossy.dropped) >= 5, lossy.dropped
    if sender_side:
        c = tab["counters"]
        assert c["nack_sent"] > 0 and c["nack_sent_seqs"] >= len(lossy.dropped) // 2, c
        # what the gateway NACKed came back: loss after recovery stays low
        assert tab["video"]["loss_pct_total"] < 2.5, tab["video"]
    else:
        c = ver["counters"]
        assert c["nack_received"] > 0 and c["nack_answered"] > 0, c
        assert c["nack_answered"] >= len(lossy.dropped) // 2, (c, len(lossy.dropped))
    for pc in (tablet, verifier):
        await pc.close()


def suppress_own_pli(pc):
    """The peer never asks for a keyframe itself: only the gateway may."""
    pc.plis = 0

    async def no_pli(media_ssrc):
        pc.plis += 1

    for t in pc.getTransceivers():
        t.receiver._send_rtcp_pli = no_pli


async def keyframe_requests(gw, leg):
    n = len(gw.quality.get(("s1", leg), []))
    return (await gw.quality_after("s1", leg, n))["counters"]["keyframe_requests_sent"]


async def first_frames_after_connect(gw, tablet, late, before):
    await connected(gw, "s1", ("verifier",))
    joined = time.monotonic()
    await decoded_at_least(late, 10)
    after = await keyframe_requests(gw, "tablet")
    print("late verifier: first frame %.2f s after connected, %d PLIs of its own suppressed;"
          " keyframe requests the gateway sent the tablet: %d -> %d"
          % (late.first_frame.result() - joined, late.plis, before, after), flush=True)
    assert after > before, (before, after)


async def late(gw):
    """The verifier's offer is answered with the tablet's, but the verifier
    applies the answer only after the tablet has been sending for a while."""
    assert "kf_max_dist = 3000" in open(vpx.__file__).read()
    tablet, verifier = make_peer("tablet"), make_peer("verifier")
    await offer(gw, tablet)
    await offer(gw, verifier)
    await answered(gw, tablet)
    ev = await gw.wait("s1", lambda e: e["event"] == "answer" and e["leg"] == "verifier", "answer")
    await connected(gw, "s1", ("tablet",))
    await asyncio.sleep(2)  # the tablet's keyframe went nowhere; delta frames follow
    before = await keyframe_requests(gw, "tablet")
    await verifier.setRemoteDescription(RTCSessionDescription(sdp=ev["sdp"], type="answer"))
    suppress_own_pli(verifier)
    await first_frames_after_connect(gw, tablet, verifier, before)
    for pc in (tablet, verifier):
        await pc.close()


async def rejoin(gw):
    """A new verifier PeerConnection (a page reload: new DTLS fingerprint)
    joins the running session after the first one closed."""
    assert "kf_max_dist = 3000" in open(vpx.__file__).read()
    tablet, verifier = make_peer("tablet"), make_peer("verifier")
    await connect_pair(gw, tablet, verifier)
    await decoded_at_least(verifier, 10)
    await verifier.close()  # DTLS close_notify: the gateway fails the leg
    await gw.wait("s1", lambda e: e["event"] == "failed" and e["leg"] == "verifier", "failed")
    await asyncio.sleep(1.5)  # the tablet keeps sending delta frames meanwhile
    before = await keyframe_requests(gw, "tablet")
    again = make_peer("verifier")
    await offer(gw, again)
    await answered(gw, again)
    suppress_own_pli(again)
    await first_frames_after_connect(gw, tablet, again, before)
    for pc in (tablet, again):
        await pc.close()


async def concurrency(gw, sessions=20):
    await asyncio.sleep(0.5)
    base = await gw.resource_counts()
    print("baseline fds=%d threads=%d" % base, flush=True)
    ids = ["c%02d" % i for i in range(sessions)]
    for sid in ids:
        gw.send(op="open", session=sid)
        ev = await gw.wait(sid, lambda e: e["event"] == "opened", "opened", False)
        assert ev["result"] == 0, ev
    pairs = [(make_peer("tablet", sid, True), make_peer("verifier", sid, True)) for sid in ids]
    await asyncio.gather(*(connect_pair(gw, t, v, False) for t, v in pairs))
    print("%d sessions connected" % sessions, flush=True)
    peak = await gw.resource_counts()
    print("with sessions fds=%d threads=%d" % peak, flush=True)
    await asyncio.gather(*(decoded_at_least(pc, 5) for pair in pairs for pc in pair))
    print("all %d peers decoded frames: %s" % (2 * sessions,
                                               sorted({pc.decoded for p in pairs for pc in p})[:3]),
          flush=True)
    for t, v in pairs:
        assert t.sizes == {(160, 120)} and v.sizes == {(160, 120)}, (t.sizes, v.sizes)
        for leg in ("tablet", "verifier"):
            stats = await gw.quality_until(
                t.session, leg, lambda q: q["video"]["fps"] > 0 and q["video"]["width"] > 0,
                "video")
            check_shape(stats, leg)
            assert (stats["video"]["width"], stats["video"]["height"]) == (160, 120), stats
    print("every leg reported quality with 160x120 video", flush=True)
    await asyncio.gather(*(pc.close() for pair in pairs for pc in pair))
    for sid in ids:
        gw.send(op="close", session=sid)
    # Closing is posted to the workers: poll until they caught up.
    now = None
    for _ in range(100):
        now = await gw.resource_counts()
        if now == base:
            break
        await asyncio.sleep(0.1)
    print("after close fds=%d threads=%d" % now, flush=True)
    assert now == base, (base, now)


MODES = {
    "quality": quality,
    "loss": lambda gw: loss(gw, sender_side=False),
    "loss_sender": lambda gw: loss(gw, sender_side=True),
    "rejoin": rejoin,
    "late": late,
    "concurrency": concurrency,
}


async def main(peer_path, mode):
    if mode not in MODES:
        raise SystemExit("unknown mode " + mode)

    async def body(gw):
        try:
            await MODES[mode](gw)
        finally:
            await asyncio.wait_for(asyncio.gather(*(pc.close() for pc in PEERS),
                                                  return_exceptions=True), TIMEOUT)

    await relay.with_media_peer(peer_path, body, gateway=Gateway)
    print("ok", mode, flush=True)


if __name__ == "__main__":
    run_main(main(sys.argv[1], sys.argv[2]))
