#!/usr/bin/python3
"""Recordings made through the real gateway by two aiortc peers (DESIGN 6,
docs/protocol.md "Recording" and "Recordings for auditors"):

- optional policy: the verifier's `record`, the tablet's consent, ~10 s of
  media, `record` stop; the recording is audited as stored with the SHA-256
  of its ciphertext file, listed by `madoguchi recording list`, exported to
  a file ffprobe reads with both parties' audio and video, and played back
  over HTTPS by an auditor who gave a reason (audited as its hash) with
  Range requests; nothing in clear is on disk;
- required policy: `verified` is accepted once a consented recording ran;
- crash: the gateway is SIGKILLed ~8 s into a recording; after a restart
  the recording is listed as cut, audited, and exports with at least 6 s.

The media-level checks of the file (A/V sync, every frame decoding, no
plaintext frame bytes on disk, a stalled muxer) are in tests/recorder."""

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from test_recording import REGISTRY, USERS, find_event  # noqa: E402
from webrtc import LIVE_TIMEOUT, Leg, LiveBase  # noqa: E402

MKV_MAGIC = bytes.fromhex("1A45DFA3")
RECORD_SECONDS = 10.0


def ffprobe(path):
    r = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format",
                        "-show_streams", str(path)], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("ffprobe %s: %s" % (path, r.stderr))
    return json.loads(r.stdout)


class RecordingBase(LiveBase):
    registry = REGISTRY
    users = USERS
    verifier_name, device_name = "v-yasuoka", "TAB-NUKUTA-1"

    async def assigned_session(self, tablet_channels=(), verifier_channels=()):
        verifier = await self.staff(self.verifier_name)
        tablet = await self.device(self.device_name)
        session = (await self.request(tablet))["session"]
        await verifier.send({"type": "accept", "session": session})
        await tablet.expect("assigned", session=session)
        await verifier.expect("assigned", session=session)
        t = Leg(tablet, session, tablet_channels)
        v = Leg(verifier, session, verifier_channels)
        self.legs += [t, v]
        return session, t, v

    async def stored(self, session, timeout=30):
        """The recording_stored entries of the session, once there is one."""
        deadline = time.monotonic() + timeout * harness.SLOW
        while True:
            entries = await self.gw.audit_api(session=session)
            found = find_event(entries, "recording_stored")
            if found or time.monotonic() > deadline:
                return found, entries
            await asyncio.sleep(0.3)

    async def start_recording(self, session, t, v):
        """record start, consent given: returns the monotonic time it ran."""
        await v.client.send({"type": "record", "session": session, "action": "start"})
        await t.client.expect("consent", session=session, timeout=LIVE_TIMEOUT)
        await t.client.send({"type": "consent", "session": session, "given": True})
        await v.client.expect("recording", session=session, state="on", timeout=LIVE_TIMEOUT)
        await t.client.expect("recording", session=session, state="on", timeout=LIVE_TIMEOUT)
        return time.monotonic()

    def export(self, recording, out, check=True):
        return self.gw.cli("recording", "export", recording, "--out", out, "--reason",
                           "complaint 2026-118", check=check)

    def recording_ids(self, session):
        return self.gw.sqlite("SELECT id FROM recording WHERE session_id = '%s'"
                              " ORDER BY started_at" % session).split()


class OptionalRecording(RecordingBase):
    async def test_record_list_export_and_play(self):
        gw = self.gw
        session, t, v = await self.go_live()
        began = await self.start_recording(session, t, v)
        await asyncio.sleep(RECORD_SECONDS)
        await v.client.send({"type": "record", "session": session, "action": "stop",
                             "id": "stop-1"})
        wall = time.monotonic() - began
        await v.client.expect("recording", session=session, state="stopped", re="stop-1")
        await t.client.expect("recording", session=session, state="stopped")

        stored, entries = await self.stored(session)
        self.assertEqual(len(stored), 1, harness.describe_entries(entries))
        detail = stored[0]["detail"]
        recording = detail["recording"]
        self.assertEqual(self.recording_ids(session), [recording])
        self.assertEqual(detail.get("state"), "complete")
        for event in ("consent_asked", "consent_given", "record_start", "record_stop"):
            self.assertTrue(find_event(entries, event), event)
        self.assertTrue(find_event(entries, "record_start", recording=recording))
        # The stored hash is the ciphertext file's.
        rec_file = gw.dir / "evidence" / "recordings" / (recording + ".rec")
        data = rec_file.read_bytes()
        self.assertEqual(detail.get("sha256"), hashlib.sha256(data).hexdigest())
        self.assertNotIn(MKV_MAGIC, data, "Matroska magic in the encrypted file")
        self.assertLess(abs(detail.get("duration_ms", 0) / 1000 - wall), 1.0,
                        "stored duration vs wall time %.2f s: %s" % (wall, detail))

        # The session ends verified (optional policy needs no recording).
        await v.client.send({"type": "outcome", "session": session, "result": "verified"})
        await t.client.expect("ended", session=session, outcome="verified")

        listed = gw.cli("recording", "list").stdout
        line = next((ln for ln in listed.splitlines() if recording in ln), "")
        self.assertIn("complete", line, listed)

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "export.webm"
            r = self.export(recording, out)
            self.assertIn("webm", r.stdout.lower())
            probe = ffprobe(out)
            kinds = sorted(s["codec_type"] for s in probe["streams"])
            self.assertEqual(kinds, ["audio", "audio", "video", "video"], probe["streams"])
            duration = float(probe["format"]["duration"])
            # The export is the stored recording: its duration is the one the
            # gateway stored (a frame either way), which the wall time bounds
            # above (the sender's clock and a loaded machine move it a little).
            stored_s = detail["duration_ms"] / 1000
            self.assertLess(abs(duration - stored_s), 0.1,
                            "export %.2f s, stored %.2f s" % (duration, stored_s))
        self.assertTrue(find_event(gw.audit_export("--session", session), "recording_exported",
                                   recording=recording))

        await self.play(session, recording)

    async def play(self, session, recording):
        gw = self.gw
        cookie = await gw.login_ok("a-audit")
        status, body, _ = await gw.ahttp("POST", "/api/recordings/view",
                                         {"recording": recording, "reason": " "}, cookie=cookie)
        self.assertEqual((status, body.get("code")), (400, "schema_invalid"))
        status, body, _ = await gw.ahttp("POST", "/api/recordings/view",
                                         {"recording": "rec-none", "reason": "x"}, cookie=cookie)
        self.assertEqual((status, body.get("code")), (404, "recording_unknown"))
        reason = "苦情番号 2026-118 の確認"
        status, view, _ = await gw.ahttp("POST", "/api/recordings/view",
                                         {"recording": recording, "reason": reason},
                                         cookie=cookie)
        self.assertEqual(status, 200, view)
        self.assertEqual(view["content_type"], "video/webm")
        self.assertFalse(view["truncated"])
        size = view["size"]
        self.assertGreater(size, 10000)
        entries = await gw.audit_api(session=session)
        viewed = find_event(entries, "recording_viewed", recording=recording)
        self.assertEqual(len(viewed), 1, harness.describe_entries(entries))
        self.assertEqual(viewed[0]["detail"]["reason_sha256"],
                         hashlib.sha256(reason.encode()).hexdigest())
        self.assertNotIn(reason, json.dumps(entries, ensure_ascii=False))

        url = view["url"]

        def get(headers=None, cookie=cookie):
            return gw.http("GET", url, cookie=cookie, headers=headers)

        status, head, resp = await asyncio.to_thread(get, {"Range": "bytes=0-99"})
        self.assertEqual(status, 206)
        self.assertEqual(resp.getheader("Content-Range"), "bytes 0-99/%d" % size)
        self.assertEqual(resp.getheader("Cache-Control"), "no-store")
        # http() parses JSON or decodes text; fetch raw bytes with a plain request
        raw = await asyncio.to_thread(self.raw_get, url, cookie, "bytes=0-99")
        self.assertEqual(len(raw), 100)
        self.assertTrue(raw.startswith(MKV_MAGIC), raw[:8])
        whole = await asyncio.to_thread(self.raw_get, url, cookie, None)
        self.assertEqual(len(whole), size)
        self.assertEqual(whole[:100], raw)
        tail = await asyncio.to_thread(self.raw_get, url, cookie, "bytes=-1000")
        self.assertEqual(tail, whole[-1000:])
        a, b = size // 3, 2 * size // 3  # across chunk boundaries of the encrypted file
        middle = await asyncio.to_thread(self.raw_get, url, cookie, "bytes=%d-%d" % (a, b))
        self.assertEqual(middle, whole[a:b + 1])
        status, _, resp = await asyncio.to_thread(get, {"Range": "bytes=%d-" % size})
        self.assertEqual(status, 416)
        self.assertEqual(resp.getheader("Content-Range"), "bytes */%d" % size)
        # The played stream is the recording: ffprobe reads it from memory.
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "played.mkv"
            p.write_bytes(whole)
            kinds = sorted(s["codec_type"] for s in ffprobe(p)["streams"])
            self.assertEqual(kinds, ["audio", "audio", "video", "video"])
        # Nothing in clear was written under the gateway's data directory.
        for path in gw.dir.rglob("*"):
            if path.is_file():
                with open(path, "rb") as f:
                    self.assertNotEqual(f.read(4), MKV_MAGIC, path)

        # The ticket is the auditor's and this recording's only.
        verifier_cookie = await gw.login_ok("v-yasuoka")
        status, body, _ = await asyncio.to_thread(get, None, verifier_cookie)
        self.assertEqual(status, 403)
        status, body, _ = await gw.ahttp("GET", "/api/recordings/play?ticket=" + "0" * 32,
                                         cookie=cookie)
        self.assertEqual((status, body.get("code")), (403, "forbidden"))
        status, body, _ = await gw.ahttp("GET", "/api/recordings?session=" + session,
                                         cookie=cookie)
        self.assertEqual(status, 200, body)
        self.assertEqual([r["recording"] for r in body["recordings"]], [recording])
        self.assertEqual(body["recordings"][0]["state"], "complete")
        status, body, _ = await gw.ahttp("GET", "/api/recordings", cookie=verifier_cookie)
        self.assertEqual((status, body.get("code")), (403, "forbidden"))
        # An auditor of another municipality: neither listed nor playable.
        other = await gw.login_ok("a-nikko")
        status, body, _ = await gw.ahttp("GET", "/api/recordings", cookie=other)
        self.assertEqual((status, body.get("recordings")), (200, []))
        status, body, _ = await gw.ahttp("POST", "/api/recordings/view",
                                         {"recording": recording, "reason": "x"}, cookie=other)
        self.assertEqual((status, body.get("code")), (404, "recording_unknown"))
        status, body, _ = await asyncio.to_thread(get, None, other)
        self.assertEqual(status, 403)

    def raw_get(self, url, cookie, range_header):
        import http.client
        conn = http.client.HTTPSConnection(harness.HOST, self.gw.staff_port,
                                           context=self.gw.ssl_context(), timeout=30)
        try:
            headers = {"Cookie": harness.COOKIE + "=" + cookie}
            if range_header:
                headers["Range"] = range_header
            conn.request("GET", url, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status not in (200, 206):
                raise AssertionError("GET %s (%s): %s %r" % (url, range_header, resp.status,
                                                             body[:200]))
            return body
        finally:
            conn.close()


class ConsentWhileLive(RecordingBase):
    async def test_refused_while_live_records_nothing(self):
        gw = self.gw
        session, t, v = await self.go_live()
        await v.client.send({"type": "record", "session": session, "action": "start"})
        await t.client.expect("consent", session=session)
        await t.client.send({"type": "consent", "session": session, "given": False})
        await v.client.expect("recording", session=session, state="refused")
        await asyncio.sleep(1.5)  # media keeps flowing; nothing may be written
        self.assertEqual(self.recording_ids(session), [])
        rec_dir = gw.dir / "evidence" / "recordings"
        self.assertEqual(list(rec_dir.glob("*")) if rec_dir.exists() else [], [])
        entries = await gw.audit_api(session=session)
        self.assertTrue(find_event(entries, "consent_refused"))
        self.assertFalse(find_event(entries, "record_start"))

    async def test_consent_asked_once_per_session(self):
        session, t, v = await self.go_live()
        await self.start_recording(session, t, v)
        await asyncio.sleep(1)
        await v.client.send({"type": "record", "session": session, "action": "stop"})
        await v.client.expect("recording", session=session, state="stopped")
        # Again: consent stands, the recording starts at once.
        await v.client.send({"type": "record", "session": session, "action": "start",
                             "id": "again"})
        await v.client.expect("recording", session=session, state="on", re="again")
        await t.client.expect_none("consent", 0.5)
        await asyncio.sleep(1)
        await t.client.send({"type": "hangup", "session": session})
        await v.client.expect("ended", session=session)
        deadline = time.monotonic() + 30 * harness.SLOW
        while True:
            stored, entries = await self.stored(session)
            if len(stored) == 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        self.assertEqual(len(stored), 2, harness.describe_entries(entries))
        self.assertEqual(len(find_event(entries, "consent_asked")), 1)
        self.assertEqual(sorted(self.recording_ids(session)),
                         sorted(e["detail"]["recording"] for e in stored))
        whys = sorted(e["detail"]["why"] for e in find_event(entries, "record_stop"))
        self.assertEqual(whys, ["session_ended", "verifier"])


class RequiredRecording(RecordingBase):
    verifier_name, device_name = "v-nikko", "TAB-KIYOTAKI-1"

    async def test_verified_after_a_consented_recording(self):
        session, t, v = await self.assigned_session()
        await t.client.expect("consent", session=session)
        await t.client.send({"type": "consent", "session": session, "given": True})
        await v.client.expect("recording", session=session, state="consented")
        await v.client.send({"type": "outcome", "session": session, "result": "verified",
                             "id": "o1"})
        await v.client.expect_error("recording_required", re="o1")
        # Media up: the recording starts by itself (policy required).
        await asyncio.gather(t.offer(), v.offer())
        await asyncio.gather(t.apply_answer(), v.apply_answer())
        await v.client.expect("recording", session=session, state="on", timeout=LIVE_TIMEOUT)
        await asyncio.sleep(2)
        await v.client.send({"type": "outcome", "session": session, "result": "verified",
                             "id": "o2"})
        await v.client.expect("ended", session=session, outcome="verified", re="o2")
        # Ending the session stopped the recording, and it was stored.
        stored, entries = await self.stored(session)
        self.assertEqual(len(stored), 1, harness.describe_entries(entries))
        self.assertTrue(find_event(entries, "record_stop", why="session_ended"))
        self.assertTrue(find_event(entries, "record_start"))


class CrashedRecording(RecordingBase):
    async def test_sigkill_during_recording_leaves_a_cut_recording(self):
        gw = self.gw
        session, t, v = await self.go_live()
        began = await self.start_recording(session, t, v)
        await asyncio.sleep(8.0 - (time.monotonic() - began))
        gw.kill()  # SIGKILL: no shutdown, no final chunk
        [recording] = self.recording_ids(session)
        self.assertEqual(gw.sqlite("SELECT state FROM recording WHERE id = '%s'"
                                   % recording).strip(), "recording")
        for leg in self.legs:
            await leg.close()
        self.legs.clear()

        gw.exit_checked = False
        await gw.start()
        self.assertEqual(gw.sqlite("SELECT state FROM recording WHERE id = '%s'"
                                   % recording).strip(), "cut")
        listed = gw.cli("recording", "list").stdout
        line = next((ln for ln in listed.splitlines() if recording in ln), "")
        self.assertIn("cut", line, listed)
        stored, entries = await self.stored(session)
        self.assertEqual(len(stored), 1, harness.describe_entries(entries))
        self.assertEqual(stored[0]["detail"].get("state"), "cut")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "cut.webm"
            r = self.export(recording, out)
            self.assertIn("cut", r.stdout)
            duration = float(ffprobe(out)["format"]["duration"])
            self.assertGreaterEqual(duration, 6.0, r.stdout)


if __name__ == "__main__":
    harness.main()
