#!/usr/bin/python3
"""GStreamer webrtcbin as the tablet (issue 12, item 5), through the real
daemon: tests/webrtcbin/webrtcbin_tablet (C, webrtcbin + libsoup's
WebSocket client with the device certificate) requests a session; the
verifier is the harness's aiortc peer (Python), which accepts.  Media both
ways (the verifier decodes the tablet's VP8, the tablet decodes the
verifier's video and audio), and chat both ways over the "chat" data
channels, stored and audited by the gateway; then the verifier records the
outcome and the tablet gets `ended`.  Loopback only."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

import harness  # noqa: E402
from webrtc import LIVE_TIMEOUT, Leg, LiveBase  # noqa: E402

TABLET = os.environ.get("MD_WEBRTCBIN_TABLET")


class WebrtcbinTablet(LiveBase):
    async def test_session_media_and_chat(self):
        gw = self.gw
        verifier = await self.staff("v-yasuoka")
        cert, key = gw.device_files("TAB-NUKUTA-1")
        env = dict(os.environ)
        # GStreamer's own allocations outlive main(); ours are checked by the
        # gateway's run, not here.
        env["ASAN_OPTIONS"] = "detect_leaks=0"
        proc = await asyncio.create_subprocess_exec(
            TABLET, "wss://%s:%d/ws" % (harness.HOST, gw.device_port), gw.ca, cert, key,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        self.addAsyncCleanup(self.reap, proc)
        events = []

        async def next_event(kind):
            """The first event of `kind` not taken yet (events may come in any order)."""
            for ev in events:
                if ev["event"] == kind and not ev.get("taken"):
                    ev["taken"] = True
                    return ev
            while True:
                line = await asyncio.wait_for(proc.stdout.readline(), LIVE_TIMEOUT)
                if not line:
                    err = (await proc.stderr.read()).decode(errors="replace")
                    raise AssertionError("webrtcbin tablet exited: %s\n%s" % (events, err[-3000:]))
                ev = json.loads(line)
                events.append(ev)
                if ev["event"] == "error":
                    raise AssertionError("webrtcbin tablet: %s" % ev)
                if ev["event"] == kind:
                    ev["taken"] = True
                    return ev

        session = (await next_event("queued"))["session"]
        await verifier.send({"type": "accept", "session": session})
        await verifier.expect("assigned", session=session)
        v = Leg(verifier, session, ("chat",))
        self.legs.append(v)
        await v.offer()
        sdp = await v.apply_answer()
        self.assertIn("VP8", sdp)
        await verifier.expect("state", session=session, state="live", timeout=LIVE_TIMEOUT)
        await next_event("live")

        # The tablet's video, decoded by the verifier.
        frames = 0
        while True:
            track = await asyncio.wait_for(v.tracks.get(), LIVE_TIMEOUT)
            if track.kind == "video":
                break
        for _ in range(20):
            frame = await asyncio.wait_for(track.recv(), LIVE_TIMEOUT)
            frames += 1
        self.assertEqual((frame.width, frame.height), (320, 240))

        # Chat both ways: the tablet's arrives here, ours there.
        chat = v.channels["chat"]
        await chat.open()
        got = None
        while got is None:
            m = await chat.receive()
            if m.get("type") == "chat":
                got = m
        self.assertEqual(got["text"], "webrtcbin の窓口端末です。")
        chat.chat("v-1", "カードを見せてください。")
        ev = await next_event("chat")
        self.assertEqual(ev["text"], "カードを見せてください。")
        await next_event("chat_ack")

        # Let the verifier's media reach the tablet's decoders for a moment.
        await asyncio.sleep(2)
        await verifier.send({"type": "outcome", "session": session, "result": "verified"})
        await verifier.expect("ended", session=session)
        ended = await next_event("ended")
        self.assertEqual((ended["outcome"], ended["reason"]), ("verified", "outcome"))
        self.assertTrue(ended["chat_acked"])
        self.assertGreater(ended["video_frames"], 10, ended)
        self.assertGreater(ended["audio_buffers"], 10, ended)
        self.assertEqual(await asyncio.wait_for(proc.wait(), LIVE_TIMEOUT), 0)
        sys.stderr.write("webrtcbin tablet: %s; verifier decoded %d frames of it\n"
                         % (ended, frames))

        entries = await gw.audit_api(session=session)
        chats = sorted(e["detail"]["leg"] for e in entries if e.get("event") == "chat")
        self.assertEqual(chats, ["tablet", "verifier"], harness.describe_entries(entries))

    async def reap(self, proc):
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


if __name__ == "__main__":
    if not TABLET:
        sys.exit("set MD_WEBRTCBIN_TABLET (meson test does)")
    harness.main()
