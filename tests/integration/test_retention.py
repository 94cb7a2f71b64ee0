#!/usr/bin/python3
"""Retention through the real CLI and gateway (DESIGN 5 and 6,
docs/protocol.md "Retention"): once a session is older than its
municipality's retention_days, `madoguchi retention run` destroys the
wrapped session key, then deletes the files and the chat transcript, audits
the purge (retention_purge), and a second run changes nothing.  `serve` runs
the same job when it starts and daily.

The session is a real one (two aiortc peers, a chat on the data channel, so
that an encrypted transcript exists); its times are then moved back past
the retention period in the database, as waiting a day is not a test."""

import asyncio
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from test_recording import REGISTRY, USERS  # noqa: E402
from test_recording_media import RecordingBase  # noqa: E402
from webrtc import LiveBase  # noqa: E402

DAY_MS = 24 * 3600 * 1000


def backdate(gw, session, days):
    """Moves a session (and its recordings) `days` into the past."""
    shift = days * DAY_MS
    gw.sqlite(
        "UPDATE verification_session SET requested_at = requested_at - %d,"
        " assigned_at = assigned_at - %d, live_at = live_at - %d, ended_at = ended_at - %d"
        " WHERE id = '%s';"
        "UPDATE recording SET started_at = started_at - %d, ended_at = ended_at - %d"
        " WHERE session_id = '%s';" % (shift, shift, shift, shift, session, shift, shift, session))


def audit_rows(gw):
    return int(gw.sqlite("SELECT COUNT(*) FROM audit").strip())


class Retention(LiveBase):
    registry = REGISTRY  # 204111: retention_days 1
    users = USERS

    async def session_with_transcript(self):
        session, t, v = await self.go_live(("chat",), ("chat",))
        tc, vc = t.channels["chat"], v.channels["chat"]
        await asyncio.gather(tc.open(), vc.open())
        tc.chat("t-1", "本人確認のための会話です。")
        while (await tc.receive()).get("type") != "chat_ack":
            pass
        await t.client.send({"type": "hangup", "session": session})
        for leg in (t, v):
            await leg.client.expect("ended", session=session)
        return session

    async def test_purge_after_retention_then_nothing(self):
        gw = self.gw
        session = await self.session_with_transcript()
        key = gw.dir / "evidence" / "keys" / (session + ".key")
        sdir = gw.dir / "evidence" / "sessions" / session
        self.assertTrue(key.is_file(), key)
        self.assertTrue((sdir / "transcript").is_file(), sdir)
        await gw.stop()

        # Within the period: nothing happens.
        r = gw.cli("retention", "run")
        self.assertIn("0 recordings and the evidence of 0 sessions purged", r.stdout)
        self.assertTrue(key.is_file())

        backdate(gw, session, 2)
        before = audit_rows(gw)
        r = gw.cli("retention", "run")
        self.assertIn("purged the evidence of session %s" % session, r.stdout)
        self.assertIn("the evidence of 1 session purged", r.stdout)
        self.assertFalse(key.exists(), "the wrapped key survived")
        self.assertFalse(sdir.exists(), "the ciphertext survived")
        purged_at = gw.sqlite("SELECT evidence_purged_at FROM verification_session WHERE id = '%s'"
                              % session).strip()
        self.assertTrue(purged_at.isdigit(), purged_at)
        entries = [e for e in gw.audit_export("--session", session)
                   if e.get("event") == "retention_purge"]
        self.assertEqual(len(entries), 1, entries)
        detail = entries[0]["detail"]
        detail = json.loads(detail) if isinstance(detail, str) else detail
        self.assertEqual(detail.get("kind"), "session_evidence")
        self.assertEqual(entries[0].get("municipality"), "204111")

        # A second run changes nothing: no file, no row, no audit entry.
        after = audit_rows(gw)
        self.assertGreater(after, before)
        r = gw.cli("retention", "run")
        self.assertIn("0 recordings and the evidence of 0 sessions purged, 0 leftovers", r.stdout)
        self.assertEqual(audit_rows(gw), after, "the second run wrote audit entries")
        gw.cli("audit", "verify")

        # serve runs the job at start: still nothing to do, and it starts.
        gw.exit_checked = False
        await gw.start()
        await self.assert_alive()


class RecordingRetention(RecordingBase):
    async def test_recording_purged_export_fails_then_nothing(self):
        gw = self.gw
        session, t, v = await self.go_live()
        await self.start_recording(session, t, v)
        await asyncio.sleep(2)
        await v.client.send({"type": "outcome", "session": session, "result": "verified"})
        await t.client.expect("ended", session=session)
        stored, entries = await self.stored(session)
        self.assertEqual(len(stored), 1, harness.describe_entries(entries))
        [recording] = self.recording_ids(session)
        rec_file = gw.dir / "evidence" / "recordings" / (recording + ".rec")
        self.assertTrue(rec_file.is_file())
        await gw.stop()

        backdate(gw, session, 2)
        r = gw.cli("retention", "run")
        self.assertIn("purged recording %s" % recording, r.stdout)
        self.assertIn("1 recording and", r.stdout)
        self.assertFalse(rec_file.exists(), "the ciphertext survived")
        row = gw.sqlite("SELECT state, wrapped_key IS NULL FROM recording WHERE id = '%s'"
                        % recording).strip()
        self.assertEqual(row, "purged|1", "the wrapped key survived")

        with tempfile.TemporaryDirectory() as tmp:
            r = gw.cli("recording", "export", recording, "--out", Path(tmp) / "x.webm",
                       "--reason", "after retention", check=False)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("(recording_purged)", r.stderr)
            self.assertFalse((Path(tmp) / "x.webm").exists())
        entries = [e for e in gw.audit_export("--session", session)
                   if e.get("event") == "retention_purge"]
        self.assertEqual(len(entries), 1, entries)
        detail = entries[0]["detail"]
        detail = json.loads(detail) if isinstance(detail, str) else detail
        self.assertEqual((detail.get("kind"), detail.get("recording")), ("recording", recording))

        after = audit_rows(gw)
        r = gw.cli("retention", "run")
        self.assertIn("0 recordings and the evidence of 0 sessions purged, 0 leftovers", r.stdout)
        self.assertEqual(audit_rows(gw), after)
        self.assertEqual(gw.sqlite("SELECT state FROM recording WHERE id = '%s'"
                                   % recording).strip(), "purged")

        # The auditor's playback of it: gone, with its code.
        gw.exit_checked = False
        await gw.start()
        cookie = await gw.login_ok("a-audit")
        status, body, _ = await gw.ahttp("POST", "/api/recordings/view",
                                         {"recording": recording, "reason": "after retention"},
                                         cookie=cookie)
        self.assertEqual((status, body.get("code")), (410, "recording_purged"))

    async def test_interrupted_purge_is_finished(self):
        """A purge killed after the key went (the row says purged, the file
        is still there) is finished by the next run: here serve's own, at
        start."""
        gw = self.gw
        session, t, v = await self.go_live()
        await self.start_recording(session, t, v)
        await asyncio.sleep(1)
        await t.client.send({"type": "hangup", "session": session})
        await v.client.expect("ended", session=session)
        await self.stored(session)
        [recording] = self.recording_ids(session)
        rec_file = gw.dir / "evidence" / "recordings" / (recording + ".rec")
        await gw.stop()
        # As md_recording_purge leaves it when killed between its two steps.
        gw.sqlite("UPDATE recording SET wrapped_key = NULL, state = 'purged' WHERE id = '%s'"
                  % recording)
        self.assertTrue(rec_file.is_file())
        # serve runs the retention job as it starts (then daily): it finishes it.
        gw.exit_checked = False
        await gw.start()
        self.assertFalse(rec_file.exists())
        self.assertIn('"leftovers":1', gw.log_text().replace(" ", ""))
        r = gw.cli("retention", "run")
        self.assertIn("0 recordings and the evidence of 0 sessions purged, 0 leftovers", r.stdout)


if __name__ == "__main__":
    harness.main()
