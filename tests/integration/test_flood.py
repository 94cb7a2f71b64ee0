#!/usr/bin/python3
"""A tablet floods the `file` channel while the verifier reads slowly
(issue 4, DESIGN 4 "no unbounded buffers"): the gateway's memory stays
bounded and media keeps flowing both ways.

Both legs are aiortc peers of a live session through the real daemon.  The
municipality's policy allows 100 MiB files (a copy of the sample registry
with `max_file_mb: 100`, the largest cap the policy accepts).  The tablet
sends two 100 MiB "PDFs" back to back ("%PDF-1.x" and pseudo-random bytes,
generated once and streamed), keeping several MiB queued in its data channel
at all times, and offers the second as soon as the first is `file_verified`.
The verifier accepts what the gateway offers it but reads at 256 KiB/s: its
SCTP receiver holds what it has not read yet and advertises only what is left
of its 1 MiB window, so its window closes and the gateway's send buffer
towards it fills.  The slow reading goes on for a while after the second file
is verified; then the verifier records its outcome and both legs get `ended`.

The gateway's resident memory (VmRSS) is sampled every 200 ms.  The baseline
is the median over the live session before the flood; the growth is the peak
during the flood minus that baseline.  The bound, 64 MiB, is what the gateway
may legitimately hold for the flood, with room to spare:
- SCTP on each leg: a 256 KiB send buffer, a 1 MiB receive buffer, up to
  2048 queued outgoing packets (about 2.5 MiB) and usrsctp's mbufs for them,
  so about 4 MiB per leg;
- evidence: one 64 KiB plaintext and one sealed chunk for the file being
  written, the same for the file being read back, and the DTLS records;
- the allocator: malloc arenas of the worker and control threads keep freed
  memory, and a sanitizer build adds its own metadata.
It is far below the 200 MiB flooded and below one 100 MiB file, so a gateway
that held a whole file in memory (or queued the slow reader's data) fails.
AddressSanitizer keeps freed blocks resident in a quarantine of 256 MiB by
default, which would fill with the flood's churn whatever the gateway does;
the test caps it at 16 MiB so that what it measures is the gateway's own
memory.

The test's own peers are kept from being the bottleneck: the event loop
runs without asyncio's debug mode, the tablet's SCTP congestion window is
capped (cap_send_window) and aioice's socket buffer is larger; none of this
changes what the gateway receives or must do.

Media: each peer counts the video frames it decodes from the other; every
2 s window of the flood (from the first chunk to the outcome) must hold some.
Evidence: afterwards the session's directory holds exactly the two committed
`.ev` files and no temporary file; the audit has both files with their
hashes.  Nothing here measures speed: the phases are sized in bytes and
events, and the timeouts only catch a stall."""

import asyncio
import hashlib
import json
import os
import random
import shutil
import statistics
import struct
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aioice.turn  # noqa: E402
import harness  # noqa: E402
from aiortc.rtcsctptransport import uint32_gt  # noqa: E402
from webrtc import LIVE_TIMEOUT, LiveBase  # noqa: E402

# See the docstring: ASan's default 256 MiB quarantine would be measured too.
# The gateway inherits this environment; a build without ASan ignores it.
os.environ["ASAN_OPTIONS"] = ":".join(
    x for x in (os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=16") if x)

# aioice gives up a path after six consent checks (RFC 7675) unanswered
# within 0.5 s each, and reads its socket from the same loop that floods; a
# bigger receive buffer (aioice's own setting, 256 KiB by default) keeps the
# gateway's answers from being dropped while that loop is behind on a busy
# machine.  Only the test peers' sockets change.
aioice.turn.UDP_SOCKET_BUFFER_SIZE = 4 << 20

MUNICIPALITY = "204111"  # v-yasuoka and TAB-NUKUTA-1 (webrtc.LiveBase)
FILE_SIZE = 100 << 20  # the policy cap, max_file_mb = 100
PREFIXES = (b"%PDF-1.4\n", b"%PDF-1.7\n")  # same length: one body, two files
CHUNK = 65536 - 12  # payload per binary message: the whole message fits 64 KiB
QUEUE_HIGH = 8 << 20  # the tablet fills its data channel up to this...
QUEUE_LOW = 2 << 20  # ...again whenever it drains below this
SEND_WINDOW = 128 << 10  # the tablet's congestion window at most (cap_send_window)
READ_RATE = 256 << 10  # the verifier reads this many bytes per second
READ_WINDOW = 1 << 20  # aiortc's receive window
AFTER_FLOOD = 20  # seconds of slow reading after the second file_verified
FRAME_WINDOW = 2.0  # seconds: every window of the flood must have frames
RSS_INTERVAL = 0.2
RSS_BOUND = 64 << 20
BASELINE_SAMPLES = 10
STALL_TIMEOUT = 120 * harness.SLOW  # a transfer that makes no progress for this long failed

WEBRTC_DCEP = 50  # RFC 8831 8: PPID of DCEP messages


def flood_registry(path):
    """The sample registry with the test municipality's file cap at 100 MiB."""
    registry = json.loads(harness.SAMPLE_REGISTRY.read_text())
    for m in registry["municipalities"]:
        if m["code"] == MUNICIPALITY:
            m["security_policy"]["max_file_mb"] = FILE_SIZE >> 20
    path.write_text(json.dumps(registry, ensure_ascii=False, indent=1))
    return path


class FloodFile:
    """A file of FILE_SIZE bytes: a prefix and the shared random body,
    never joined into one object."""

    def __init__(self, fid, index, prefix, body):
        self.id, self.index, self.prefix, self.body = fid, index, prefix, body
        self.size = len(prefix) + len(body)
        h = hashlib.sha256(prefix)
        h.update(body)
        self.sha256 = h.hexdigest()

    def slice(self, offset, n):
        p = len(self.prefix)
        if offset >= p:
            return self.body[offset - p:offset - p + n]
        return self.prefix[offset:] + self.body[:n - (p - offset)]


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


class RssSampler(threading.Thread):
    """Samples a process's VmRSS every RSS_INTERVAL on its own thread, so a
    busy event loop does not thin the samples out."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.samples = []  # (monotonic time, bytes)
        self.done = threading.Event()

    def run(self):
        while True:
            try:
                self.samples.append((time.monotonic(), rss_bytes(self.pid)))
            except (OSError, AssertionError):
                return  # the process is gone; the test reports that itself
            if self.done.wait(RSS_INTERVAL):
                return

    def between(self, start, end):
        return [rss for t, rss in list(self.samples) if start <= t <= end]

    def stop(self):
        self.done.set()
        self.join(5)


class FrameCounter:
    """Receives every track of a leg; notes the time of each decoded video
    frame (audio is received and dropped)."""

    def __init__(self, leg):
        self.leg = leg
        self.video = []
        self.tasks = [asyncio.ensure_future(self._tracks())]

    async def _tracks(self):
        while True:
            track = await self.leg.tracks.get()
            self.tasks.append(asyncio.ensure_future(self._frames(track)))

    async def _frames(self, track):
        while True:
            await track.recv()
            if track.kind == "video":
                self.video.append(time.monotonic())

    async def wait_frames(self, n, timeout=LIVE_TIMEOUT):
        deadline = time.monotonic() + timeout
        while len(self.video) < n:
            if time.monotonic() > deadline:
                raise AssertionError("%s: %d video frames, waited for %d"
                                     % (self.leg.client.name, len(self.video), n))
            await asyncio.sleep(0.05)

    def per_window(self, start, end):
        """Frames in each FRAME_WINDOW-long window of [start, end)."""
        n = max(1, int((end - start) // FRAME_WINDOW))
        counts = [0] * n
        for t in self.video:
            k = int((t - start) // FRAME_WINDOW)
            if 0 <= k < n:
                counts[k] += 1
        return counts

    async def stop(self):
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def cap_send_window(sctp, cap):
    """Keeps a peer's SCTP congestion window at most `cap` bytes.  aiortc
    grows it up to the gateway's 1 MiB receive window; the excess over what
    the loopback path holds then waits as SACKs in the peer's own socket, in
    front of the gateway's consent checks, and aioice gives the path up when
    six of its own checks in a row are not answered within 0.5 s (RFC 7675
    allows 30 s).  The cap keeps that queue short; the window on loopback
    stays far above what the test's Python can send per round trip."""
    transmit = sctp._transmit

    async def capped():
        sctp._cwnd = min(sctp._cwnd, cap)
        await transmit()

    sctp._transmit = capped


class SlowReader:
    """Makes a peer's SCTP receiver read its data channels at `rate` bytes/s.

    aiortc hands each reassembled message to the channel at once, gives its
    window back and accepts any DATA.  Here the messages (other than DCEP)
    are held in order and handed over at `rate`, and a held message keeps
    its bytes out of the advertised window, which closes once READ_WINDOW
    bytes wait (RFC 4960 6.2: a_rwnd is the buffer space left).  While the
    window is closed, new DATA is dropped and not acknowledged, as a full
    receiver must (RFC 4960 6.2), so zero-window probes do not get through
    and the sender keeps the data; once reading opens the window by 64 KiB
    from near zero, a SACK tells the sender (the window update RFC 4960 6.2
    asks for).  DTLS and RTP are not touched: media keeps flowing to this
    peer."""

    def __init__(self, sctp, rate):
        self.sctp = sctp
        self.rate = rate
        self.held = deque()
        self.held_bytes = 0
        self.max_held = 0
        self.delivered = 0
        self.dropped = 0
        self.last_rwnd = READ_WINDOW
        self.min_rwnd = READ_WINDOW
        self.wake = asyncio.Event()
        self._receive = sctp._receive
        self._receive_data_chunk = sctp._receive_data_chunk
        self._send_sack = sctp._send_sack
        sctp._receive = self.receive
        sctp._receive_data_chunk = self.receive_data_chunk
        sctp._send_sack = self.send_sack
        self.task = asyncio.ensure_future(self.read())

    def largest_tsn(self):
        largest = self.sctp._last_received_tsn
        for tsn in self.sctp._sack_misordered:
            if uint32_gt(tsn, largest):
                largest = tsn
        return largest

    async def receive_data_chunk(self, chunk):
        s = self.sctp
        if (s._advertised_rwnd <= 0 and s._last_received_tsn is not None
                and uint32_gt(chunk.tsn, self.largest_tsn())):
            self.dropped += 1
            s._sack_needed = True  # the probe is answered: still no room
            return
        await self._receive_data_chunk(chunk)

    async def receive(self, stream_id, pp_id, data):
        if pp_id == WEBRTC_DCEP:
            await self._receive(stream_id, pp_id, data)
            return
        self.held.append((stream_id, pp_id, data))
        self.held_bytes += len(data)
        self.max_held = max(self.max_held, self.held_bytes)
        self.sctp._advertised_rwnd -= len(data)
        self.wake.set()

    async def send_sack(self):
        self.last_rwnd = max(0, self.sctp._advertised_rwnd)
        self.min_rwnd = min(self.min_rwnd, self.last_rwnd)
        await self._send_sack()

    async def read(self):
        while True:
            while not self.held:
                self.wake.clear()
                await self.wake.wait()
            stream_id, pp_id, data = self.held.popleft()
            await asyncio.sleep(len(data) / self.rate)
            self.held_bytes -= len(data)
            self.delivered += len(data)
            self.sctp._advertised_rwnd += len(data)
            await self._receive(stream_id, pp_id, data)
            if self.last_rwnd < 65536 and self.sctp._advertised_rwnd >= self.last_rwnd + 65536:
                await self.send_sack()

    async def stop(self):
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def file_message(ch, fid, timeout):
    """The next control message about transfer `fid` on a sender's channel
    (file_progress is skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("%s: nothing about %s in %.0f s" % (ch.label, fid, timeout))
        try:
            m = await asyncio.wait_for(ch.inbox.get(), remaining)
        except asyncio.TimeoutError:
            continue
        if isinstance(m, dict) and m.get("id") == fid and m.get("type") != "file_progress":
            return m
        if isinstance(m, dict) and m.get("type") == "file_progress":
            continue
        raise AssertionError("%s: unexpected %r while sending %s" % (ch.label, m, fid))


async def flood_file(ch, f):
    """Offers `f` and sends it as fast as the channel drains, keeping between
    QUEUE_LOW and QUEUE_HIGH bytes queued; returns the gateway's answer to
    file_done."""
    dc = ch.dc
    dc.send(json.dumps({"type": "file_offer", "id": f.id, "index": f.index,
                        "name": f.id + ".pdf", "size": f.size, "mime": "application/pdf",
                        "sha256": f.sha256, "kind": "file"}))
    m = await file_message(ch, f.id, LIVE_TIMEOUT)
    assert m.get("type") == "file_accept", m
    low = asyncio.Event()
    dc.bufferedAmountLowThreshold = QUEUE_LOW
    dc.on("bufferedamountlow", low.set)
    try:
        offset = 0
        while offset < f.size:
            while offset < f.size and dc.bufferedAmount < QUEUE_HIGH:
                n = min(CHUNK, f.size - offset)
                dc.send(struct.pack(">IQ", f.index, offset) + f.slice(offset, n))
                offset += n
            if offset < f.size:
                low.clear()
                try:
                    await asyncio.wait_for(low.wait(), STALL_TIMEOUT)
                except asyncio.TimeoutError:
                    raise AssertionError("%s: %d bytes queued for %d s" % (
                        f.id, dc.bufferedAmount, STALL_TIMEOUT))
                while not ch.inbox.empty():
                    m = ch.inbox.get_nowait()
                    if not (isinstance(m, dict) and m.get("type") == "file_progress"):
                        raise AssertionError("%s: %r in the middle of the file" % (f.id, m))
    finally:
        dc.remove_listener("bufferedamountlow", low.set)
    dc.send(json.dumps({"type": "file_done", "id": f.id}))
    return await file_message(ch, f.id, STALL_TIMEOUT)


class VerifierFiles:
    """The verifier's side of the file channel: accepts every offer and
    checks each chunk it reads against the file the tablet sent."""

    def __init__(self, ch, files):
        self.ch = ch
        self.files = {f.id: f for f in files}
        self.offers = []
        self.received = {}  # id -> bytes received in order
        self.by_index = {}
        self.task = asyncio.ensure_future(self.run())

    async def run(self):
        while True:
            m = await self.ch.inbox.get()
            if isinstance(m, bytes):
                index, offset = struct.unpack(">IQ", m[:12])
                offer = self.by_index.get(index)
                assert offer is not None, "chunk for index %d, never offered" % index
                fid = offer["id"]
                assert offset == self.received[fid], (fid, offset, self.received[fid])
                payload = m[12:]
                assert offset + len(payload) <= offer["size"], (fid, offset, len(payload))
                assert payload == self.files[fid].slice(offset, len(payload)), (
                    "%s: bytes at %d differ from what the tablet sent" % (fid, offset))
                self.received[fid] += len(payload)
            elif m.get("type") == "file_offer":
                self.offers.append(m)
                self.by_index[m["index"]] = m
                self.received[m["id"]] = 0
                self.ch.dc.send(json.dumps({"type": "file_accept", "id": m["id"]}))
            elif m.get("type") == "file_done":
                fid = m["id"]
                assert self.received.get(fid) == self.files[fid].size, (fid, self.received)
                self.ch.dc.send(json.dumps({"type": "file_verified", "id": fid,
                                            "sha256": self.files[fid].sha256}))
            else:
                raise AssertionError("verifier: unexpected %r" % m)

    def check(self):
        if self.task.done() and not self.task.cancelled() and self.task.exception():
            raise self.task.exception()

    async def stop(self):
        self.check()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def mib(n):
    return "%.1f MiB" % (n / (1 << 20))


class Flood(LiveBase):
    @classmethod
    def setUpClass(cls):
        cls.registry_dir = Path(tempfile.mkdtemp(prefix="md-it-flood-"))
        cls.registry = flood_registry(cls.registry_dir / "registry-flood.json")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.registry_dir, ignore_errors=True)

    async def asyncSetUp(self):
        await super().asyncSetUp()
        # unittest runs the loop in debug mode, which records a traceback for
        # every callback and task: that slows aiortc's per-packet path so much
        # that the flood would measure the test, not the gateway.
        asyncio.get_running_loop().set_debug(False)
        self.helpers = []
        self.sampler = RssSampler(self.gw.proc.pid)
        self.sampler.start()

    async def asyncTearDown(self):
        self.sampler.stop()
        for h in self.helpers:
            await h.stop()
        await super().asyncTearDown()

    async def test_flood_to_slow_reader_bounded_memory_media_flows(self):
        body = random.Random(4).randbytes(FILE_SIZE - len(PREFIXES[0]))
        files = [FloodFile("flood-%d" % (i + 1), i + 1, p, body) for i, p in enumerate(PREFIXES)]

        session, t, v = await self.go_live(("file",), ("file",))
        tf, vf = t.channels["file"], v.channels["file"]
        await asyncio.gather(tf.open(), vf.open())
        frames = {"tablet": FrameCounter(t), "verifier": FrameCounter(v)}
        cap_send_window(t.pc.sctp, SEND_WINDOW)
        reader = SlowReader(v.pc.sctp, READ_RATE)
        verifier_files = VerifierFiles(vf, files)
        self.helpers += list(frames.values()) + [reader, verifier_files]

        # Baseline: the live session with media flowing, before any file.
        for counter in frames.values():
            await counter.wait_frames(30)
        base_start = time.monotonic()
        while len(self.sampler.between(base_start, time.monotonic())) < BASELINE_SAMPLES:
            await asyncio.sleep(RSS_INTERVAL)
        baseline = statistics.median(self.sampler.between(base_start, time.monotonic()))

        flood_start = time.monotonic()
        verified_at = []
        for f in files:
            answer = await flood_file(tf, f)
            self.assertEqual(answer, {"type": "file_verified", "id": f.id, "sha256": f.sha256})
            verified_at.append(time.monotonic())
            verifier_files.check()
            await self.assert_alive()

        # The slow reader keeps reading well after the flood; the gateway has
        # all 200 MiB stored and 100 MiB or more still to send to it.
        read_at_flood_end = reader.delivered
        while time.monotonic() < verified_at[-1] + AFTER_FLOOD:
            await asyncio.sleep(0.5)
            verifier_files.check()
        flood_end = time.monotonic()
        self.assertTrue(self.gw.alive(), "gateway died\n" + self.gw.log_tail())

        during = self.sampler.between(flood_start, flood_end)
        peak = max(during)
        summary = ("gateway RSS: baseline %s (median of %d samples), peak %s, growth %s "
                   "(bound %s) over %d samples in %.1f s; 2 x %s flooded: file 1 verified "
                   "after %.1f s, file 2 after %.1f s; verifier read %s (%s after the flood), "
                   "held at most %s, advertised window down to %d bytes, %d DATA chunks dropped "
                   "while it was closed"
                   % (mib(baseline), BASELINE_SAMPLES, mib(peak), mib(peak - baseline),
                      mib(RSS_BOUND), len(during), flood_end - flood_start, mib(FILE_SIZE),
                      verified_at[0] - flood_start, verified_at[1] - flood_start,
                      mib(reader.delivered), mib(reader.delivered - read_at_flood_end),
                      mib(reader.max_held), reader.min_rwnd, reader.dropped))
        for side, counter in frames.items():
            counts = counter.per_window(flood_start, flood_end)
            summary += "\n%s decoded %d video frames in the flood; per %.0f s window: min %d" % (
                side, sum(counts), FRAME_WINDOW, min(counts))
        sys.stderr.write(summary + "\n")

        # The reader was slow enough to push back on the gateway: its window
        # closed, and it was still being sent the first file at the end.
        self.assertLess(reader.min_rwnd, 16384, summary)
        # One file at a time towards a leg: the second waits on the gateway.
        self.assertLess(verifier_files.received.get("flood-1", 0), FILE_SIZE, summary)
        self.assertEqual([o["id"] for o in verifier_files.offers], ["flood-1"], summary)
        offer = verifier_files.offers[0]
        self.assertEqual((offer["size"], offer["sha256"], offer["mime"]),
                         (FILE_SIZE, files[0].sha256, "application/pdf"))
        self.assertGreater(verifier_files.received["flood-1"], 0, summary)
        self.assertGreater(reader.delivered, read_at_flood_end, summary)

        self.assertLess(peak - baseline, RSS_BOUND, summary)

        for side, counter in frames.items():
            counts = counter.per_window(flood_start, flood_end)
            self.assertTrue(all(counts), "%s: video frames per %.0f s window during the flood: "
                            "%s\n%s" % (side, FRAME_WINDOW, counts, summary))

        # The session is live to the end and ends normally.
        for leg in (t, v):
            self.assertFalse([m for m in leg.client.log if m.get("type") == "ended"],
                             leg.client.transcript())
        await self.media_seen(session, v)
        await v.client.send({"type": "outcome", "session": session, "result": "verified"})
        for leg in (t, v):
            e = await leg.client.expect("ended", session=session, timeout=LIVE_TIMEOUT)
            self.assertEqual(e.get("outcome"), "verified", e)

        # Both files are stored and audited; nothing partial is left.
        entries = await self.gw.audit_api(session=session)
        fields = ("id", "sha256", "size", "mime", "leg")
        stored = {e["detail"]["id"]: {k: e["detail"].get(k) for k in fields}
                  for e in entries if e.get("event") == "file"}
        self.assertEqual(stored, {f.id: {"id": f.id, "sha256": f.sha256, "size": f.size,
                                         "mime": "application/pdf", "leg": "tablet"}
                                  for f in files}, harness.describe_entries(entries))
        self.assertFalse(harness.find_audit(entries, "leg_media_lost"),
                         harness.describe_entries(entries))
        evidence = self.gw.dir / "evidence"
        sdir = evidence / "sessions" / session
        self.assertEqual(sorted(p.name for p in sdir.iterdir() if p.name != "transcript"),
                         ["flood-1.ev", "flood-2.ev"])
        self.assertEqual([str(p) for p in evidence.rglob("*.tmp")], [])
        await self.assert_alive()


if __name__ == "__main__":
    harness.main()
