#!/usr/bin/python3
"""Recording through the media plane with real WebRTC peers (aiortc).

tests/media/media_peer (one md_media session, recordings kept as `serve`
keeps them: evidence dir + SQLite store) relays two aiortc peers, the tablet
and the verifier, over loopback.  Each peer sends a test pattern: dark video
with one white flash and silence with one 1 kHz beep, flash and beep at the
same instant on the peer's own clock; the tablet's at 3 s into the
recording, the verifier's at 5 s, so each party's tracks are told apart.

Modes (docs/internals/recorder.md, "Tests"):
  vp8, h264  record ~10 s, stop, export with `madoguchi recording export`:
             ffprobe sees both parties' video and audio, duration within
             0.5 s of the recorded wall time, every frame decodes
             (ffmpeg -xerror -f null), flash and beep within 100 ms of each
             other for each party, and the encrypted file holds neither the
             Matroska magic nor any piece of the exported frames
  crash      SIGKILL media_peer 8 s into a recording; a restarted one marks
             the recording cut; it exports (reported as cut, not tampered),
             decodes, holds at least 6 s; a flipped byte in the file is then
             reported as tampering (evidence_corrupt)
  stall      the recorder's pipeline is blocked (test hook) for 3 s: the
             gateway forwards to the verifier every packet it receives from
             the tablet meanwhile (its own counters), the verifier keeps
             decoding video, and the recorder's drop counter rises

Usage: aiortc_record.py <media_peer> <madoguchi> <mode>
"""
import asyncio
import fractions
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "media"))

import numpy  # noqa: E402
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender  # noqa: E402
from aiortc.contrib.media import MediaBlackhole  # noqa: E402
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack  # noqa: E402
from av import AudioFrame, VideoFrame  # noqa: E402
import av  # noqa: E402

from aiortc_relay import (TIMEOUT, Gateway, close_peers, connect_pair,  # noqa: E402
                          run_main)

RECORD_SECONDS = 10.0
FLASH_AT = {"tablet": 3.0, "verifier": 5.0}
FLASH_LEN = 0.3
SYNC_TOLERANCE = 0.1
MKV_MAGIC = bytes.fromhex("1A45DFA3")


class Pattern:
    """When this peer flashes and beeps (wall clock); None until armed."""

    def __init__(self):
        self.at = None
        self.sent = {}  # "flash"/"beep": when its first frame left the track (wall)

    def mark(self, what):
        self.sent.setdefault(what, time.time())

    def on(self, scheduled):
        """scheduled: the wall time the frame stands for (its track's start
        plus its media time), not when Python got round to making it: a
        loaded machine delays the event loop, not the media timeline."""
        return self.at is not None and self.at <= scheduled < self.at + FLASH_LEN


class FlashTrack(VideoStreamTrack):
    def __init__(self, pattern):
        super().__init__()
        self.pattern = pattern
        self.dark = numpy.full((240, 320, 3), 16, numpy.uint8)
        self.white = numpy.full((240, 320, 3), 235, numpy.uint8)

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        img = self.dark
        if self.pattern.on(self._start + float(pts * time_base)):
            img = self.white
            self.pattern.mark("flash")
        frame = VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


class BeepTrack(AudioStreamTrack):
    RATE, SAMPLES = 48000, 960

    def __init__(self, pattern):
        super().__init__()
        self.pattern = pattern
        self.n = 0

    async def recv(self):
        # AudioStreamTrack's pacing: one 20 ms frame per 20 ms of real time.
        if hasattr(self, "_start"):
            self._timestamp += self.SAMPLES
            wait = self._start + (self._timestamp / self.RATE) - time.time()
            await asyncio.sleep(wait)
        else:
            self._start = time.time()
            self._timestamp = 0
        if self.pattern.on(self._start + self._timestamp / self.RATE):
            t = (numpy.arange(self.SAMPLES) + self.n) / self.RATE
            data = (numpy.sin(2 * numpy.pi * 1000 * t) * 16000).astype(numpy.int16)
            self.pattern.mark("beep")
        else:
            data = numpy.zeros(self.SAMPLES, numpy.int16)
        self.n += self.SAMPLES
        frame = AudioFrame.from_ndarray(data.reshape(1, -1), format="s16", layout="mono")
        frame.pts = self._timestamp
        frame.sample_rate = self.RATE
        frame.time_base = fractions.Fraction(1, self.RATE)
        return frame


def make_peer(name, codec):
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.pattern = Pattern()
    pc.addTrack(BeepTrack(pc.pattern))
    video = pc.addTransceiver(FlashTrack(pc.pattern), direction="sendrecv")
    caps = RTCRtpSender.getCapabilities("video")
    video.setCodecPreferences([c for c in caps.codecs if c.mimeType == "video/" + codec])
    pc.sink = MediaBlackhole()
    pc.video_frames = []  # arrival times of video frames from the other peer

    @pc.on("track")
    def on_track(track):
        if track.kind == "video":
            asyncio.ensure_future(count_frames(pc, track))
        else:
            pc.sink.addTrack(track)
            asyncio.ensure_future(pc.sink.start())

    pc.name = name
    return pc


async def count_frames(pc, track):
    try:
        while True:
            await track.recv()
            pc.video_frames.append(time.monotonic())
    except Exception:
        pass


class Env:
    """A temporary data dir shared by media_peer and the CLI."""

    def __init__(self, madoguchi):
        self.dir = tempfile.mkdtemp(prefix="md-rec-")
        self.madoguchi = madoguchi
        self.evidence = os.path.join(self.dir, "evidence")
        self.db = os.path.join(self.dir, "madoguchi.db")
        self.config = os.path.join(self.dir, "config.json")
        with open(self.config, "w") as f:
            json.dump({"data_dir": self.dir, "database": self.db,
                       "evidence": {"dir": self.evidence,
                                    "master_key": os.path.join(self.evidence, "master.key")}}, f)
        self.peer_env = dict(os.environ, MD_EVIDENCE_DIR=self.evidence, MD_RECORD_DB=self.db)

    def cli(self, *args, check=True):
        p = subprocess.run([self.madoguchi, "-c", self.config] + list(args),
                           capture_output=True, text=True, timeout=120)
        print("$ madoguchi", " ".join(args), "->", p.returncode, p.stdout.strip(),
              p.stderr.strip(), flush=True)
        if check:
            assert p.returncode == 0, p.stderr
        return p

    def cleanup(self):
        if os.environ.get("MD_KEEP"):
            print("kept", self.dir)
            return
        shutil.rmtree(self.dir, ignore_errors=True)


async def start_peer(peer_path, env, codec):
    proc = await asyncio.create_subprocess_exec(
        peer_path, codec, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env=env.peer_env)
    return Gateway(proc)


async def start_recording(gw, tablet, verifier):
    gw.send(op="record_start")
    begun = await gw.wait(lambda e: e["event"] == "record_begun", "record_begun")
    assert begun["result"] == "ok", begun
    t0 = time.time()
    ev = await gw.wait(lambda e: e["event"] == "recording" and e["state"] == "recording",
                       "recording on")
    for pc in (tablet, verifier):
        pc.pattern.at = t0 + FLASH_AT[pc.name]
    return begun["id"], t0, ev


def ffprobe(path):
    p = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json",
                        path], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def check_decodes(path):
    """Every packet of every track decodes (libavcodec through PyAV, errors
    fatal), one frame per video packet."""
    packets, frames = {}, {}
    with av.open(path) as c:
        for s in c.streams:
            s.codec_context.options = {"err_detect": "explode"}
        for packet in c.demux():
            if packet.size == 0:
                continue
            i = packet.stream.index
            packets[i] = packets.get(i, 0) + 1
            frames[i] = frames.get(i, 0) + len(packet.decode())
        for s in c.streams:  # what the decoder still holds
            if s.type == "video":
                frames[s.index] += len(s.codec_context.decode(None))
    for s in packets:
        assert frames.get(s, 0) >= packets[s] - 1, (s, packets[s], frames.get(s))
    print("decoded: packets %s, frames %s" % (packets, frames), flush=True)


def check_streams(info, codec):
    kinds = [(s["codec_type"], s["codec_name"]) for s in info["streams"]]
    want_video = {"VP8": "vp8", "H264": "h264"}[codec]
    assert kinds == [("video", want_video), ("audio", "opus")] * 2, kinds
    return float(info["format"]["duration"])


def onsets(path):
    """Per party (by track order): the time of the first bright video frame
    and of the first loud audio sample."""
    result = {}
    with av.open(path) as c:
        vids = [s for s in c.streams if s.type == "video"]
        auds = [s for s in c.streams if s.type == "audio"]
        for party, v, a in zip(("tablet", "verifier"), vids, auds):
            result[party] = [None, None]
        parties = {}
        for party, v, a in zip(("tablet", "verifier"), vids, auds):
            parties[v.index] = (party, 0)
            parties[a.index] = (party, 1)
        for packet in c.demux():
            if packet.stream.index not in parties:
                continue
            party, kind = parties[packet.stream.index]
            if result[party][kind] is not None:
                continue
            for frame in packet.decode():
                if frame.time is None:
                    continue
                if kind == 0:
                    if frame.to_ndarray(format="gray").mean() > 128:
                        result[party][0] = frame.time
                else:
                    samples = numpy.abs(frame.to_ndarray()).max(axis=0)
                    loud = numpy.nonzero(samples > 0.1 * (32768 if samples.dtype.kind == "i"
                                                          else 1))[0]
                    if len(loud):
                        result[party][1] = frame.time + loud[0] / frame.sample_rate
                if result[party][kind] is not None:
                    break
    return result


def check_on_disk(env, export_path):
    """No Matroska magic, no piece of the exported media in any recording file."""
    rec_dir = os.path.join(env.evidence, "recordings")
    files = [os.path.join(rec_dir, n) for n in os.listdir(rec_dir)]
    assert files, "no recording file"
    with open(export_path, "rb") as f:
        exported = f.read()
    pieces = [exported[i:i + 48] for i in range(len(exported) // 4, len(exported) * 3 // 4,
                                                len(exported) // 16)]
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        assert MKV_MAGIC not in data, "Matroska magic in " + path
        for piece in pieces:
            assert piece not in data, "plaintext media bytes in " + path
    print("on disk: %d file(s), no magic, none of %d exported pieces" % (len(files), len(pieces)),
          flush=True)


def thread_cpu(pid):
    """{tid: (name, utime + stime in clock ticks)} of a process."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[tid] = (name, int(fields[11]) + int(fields[12]))
        except OSError:
            pass
    return out


def report_cpu(before, after):
    """Informative only (never asserted): the relay's CPU (the md-media
    workers) next to the recorder's (every thread started since recording
    began: the recorder's own and GStreamer's) over the recording."""
    hz = os.sysconf("SC_CLK_TCK")
    relay = sum(t - before.get(tid, (n, 0))[1] for tid, (n, t) in after.items()
                if n.startswith("md-media"))
    recorder = sum(t for tid, (n, t) in after.items() if tid not in before)
    print("CPU over the recording: relay %.2f s, recorder %.2f s" % (relay / hz, recorder / hz),
          flush=True)


async def record_and_export(peer_path, env, codec):
    gw = await start_peer(peer_path, env, codec)
    tablet, verifier = make_peer("tablet", codec), make_peer("verifier", codec)
    try:
        await connect_pair(gw, tablet, verifier)
        cpu_before = thread_cpu(gw.proc.pid)
        rec_id, t0, _ = await start_recording(gw, tablet, verifier)
        await asyncio.sleep(RECORD_SECONDS)
        gw.send(op="record_stop")
        wall = time.time() - t0
        report_cpu(cpu_before, thread_cpu(gw.proc.pid))
        ev = await gw.wait(lambda e: e["event"] == "recording" and e["state"] != "recording",
                           "recording end")
        assert ev["state"] == "complete", ev
        assert len(ev["sha256"]) == 64 and ev["bytes"] > 0, ev
        await close_peers(tablet, verifier)
    finally:
        rc = await gw.stop()
    assert rc == 0, rc
    out = os.path.join(env.dir, "export." + ("webm" if codec == "VP8" else "mp4"))
    env.cli("recording", "export", rec_id, "--out", out, "--reason", "test export")
    listing = env.cli("recording", "list").stdout
    assert rec_id in listing and "complete" in listing, listing
    duration = check_streams(ffprobe(out), codec)
    print("%s export: %.3f s for %.3f s of wall time" % (codec, duration, wall), flush=True)
    assert abs(duration - wall) <= 0.5, (duration, wall)
    check_decodes(out)
    seen = onsets(out)
    for pc in (tablet, verifier):
        flash, beep = seen[pc.name]
        # The known instants: when the peer actually sent them.  On a loaded
        # machine Python may send one late; that skew is the peer's, not the
        # recorder's, and is taken out.
        sent = {k: v - t0 for k, v in pc.pattern.sent.items()}
        print("%s: flash at %s, beep at %s in the export; sent at %.3f and %.3f s" %
              (pc.name, flash, beep, sent["flash"], sent["beep"]), flush=True)
        assert flash is not None and beep is not None, seen
        skew = (flash - beep) - (sent["flash"] - sent["beep"])
        assert abs(skew) <= SYNC_TOLERANCE, (pc.name, flash, beep, sent)
        assert abs(flash - sent["flash"]) <= 0.5, (pc.name, flash, sent)
    check_on_disk(env, out)


async def crash(peer_path, env, codec="VP8"):
    gw = await start_peer(peer_path, env, codec)
    tablet, verifier = make_peer("tablet", codec), make_peer("verifier", codec)
    await connect_pair(gw, tablet, verifier)
    rec_id, t0, _ = await start_recording(gw, tablet, verifier)
    await asyncio.sleep(8.0)
    gw.proc.send_signal(signal.SIGKILL)
    await gw.proc.wait()
    gw.reader.cancel()
    print("SIGKILL at %.2f s into the recording" % (time.time() - t0), flush=True)
    await close_peers(tablet, verifier)
    before = env.cli("recording", "list").stdout
    assert "\trecording\t" in before, before
    # A restarted gateway recovers the row, as `serve` does at start.
    gw = await start_peer(peer_path, env, codec)
    gw.send(op="resources")
    await gw.wait(lambda e: e["event"] == "resources", "restart")
    assert await gw.stop() == 0
    listing = env.cli("recording", "list").stdout
    line = [ln for ln in listing.splitlines() if ln.startswith(rec_id)]
    assert line and line[0].split("\t")[2] == "cut", listing
    out = os.path.join(env.dir, "cut.webm")
    p = env.cli("recording", "export", rec_id, "--out", out, "--reason", "after crash")
    assert "cut" in p.stdout, p.stdout
    info = ffprobe(out)
    duration = check_streams(info, codec)
    print("cut export holds %.3f s" % duration, flush=True)
    assert duration >= 6.0, duration
    check_decodes(out)
    check_on_disk(env, out)
    # Tampering is not truncation: one flipped byte inside the file.
    path = os.path.join(env.evidence, "recordings", rec_id + ".rec")
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 0x01]))
    p = env.cli("recording", "export", rec_id, "--out", out + ".2", "--reason", "again",
                check=False)
    assert p.returncode != 0 and "evidence_corrupt" in p.stderr, p.stderr
    assert not os.path.exists(out + ".2")


def drop_stale_quality(gw):
    """Quality events queued while nobody read them describe the past."""
    while not gw.events.empty():
        ev = gw.events.get_nowait()
        if ev is not None and ev["event"] != "quality":
            gw.backlog.append(ev)


async def relay_counters(gw):
    """The gateway's own counts from the next pair of quality events:
    packets received from the tablet and packets sent to the verifier."""
    got = {}
    while len(got) < 2:
        ev = await gw.wait(lambda e: e["event"] == "quality", "quality")
        got[ev["leg"]] = ev["stats"]["counters"]
    return got["tablet"]["packets_in"], got["verifier"]["packets_out"]


async def stall(peer_path, env, codec="VP8"):
    env.peer_env["MD_RECORD_QUEUE_PACKETS"] = "64"  # full within the stall
    gw = await start_peer(peer_path, env, codec)
    tablet, verifier = make_peer("tablet", codec), make_peer("verifier", codec)
    try:
        await connect_pair(gw, tablet, verifier)
        await start_recording(gw, tablet, verifier)
        await asyncio.sleep(1.0)

        def rate(pc, since):
            return len([t for t in pc.video_frames if t >= since]) / (time.monotonic() - since)

        t = time.monotonic()
        await asyncio.sleep(2.0)
        before = rate(verifier, t)
        gw.send(op="record_stall", stalled=True)
        await asyncio.sleep(0.5)
        drop_stale_quality(gw)
        in0, out0 = await relay_counters(gw)
        t = time.monotonic()
        for _ in range(3):  # quality events come once a second
            in1, out1 = await relay_counters(gw)
        during = rate(verifier, t)
        gw.send(op="record_stall", stalled=False)
        print("during the stall the gateway received %d packets from the tablet and sent %d to "
              "the verifier; the verifier decoded %.1f fps before, %.1f fps during" %
              (in1 - in0, out1 - out0, before, during), flush=True)
        # Forwarding kept pace with what arrived (the gateway's own counts;
        # the frame rates depend on the Python peers' share of the CPU).
        assert in1 - in0 > 50 and out1 - out0 >= 0.95 * (in1 - in0), (in0, in1, out0, out1)
        assert during > 0.5 * before, (before, during)
        gw.send(op="record_stop")
        ev = await gw.wait(lambda e: e["event"] == "recording" and e["state"] != "recording",
                           "recording end")
        print("recorder: %d packets, %d dropped" % (ev["packets"], ev["dropped"]), flush=True)
        assert ev["dropped"] > 0, ev
        await close_peers(tablet, verifier)
    finally:
        rc = await gw.stop()
    assert rc == 0, rc


async def main(peer_path, madoguchi, mode):
    env = Env(madoguchi)
    try:
        if mode in ("vp8", "h264"):
            await record_and_export(peer_path, env, mode.upper())
        elif mode == "crash":
            await crash(peer_path, env)
        elif mode == "stall":
            await stall(peer_path, env)
        else:
            raise SystemExit("unknown mode " + mode)
    finally:
        env.cleanup()
    print("ok", mode, flush=True)


if __name__ == "__main__":
    run_main(main(sys.argv[1], sys.argv[2], sys.argv[3]))
