#!/usr/bin/python3
"""Consent and recording policy through the real gateway (DESIGN 5 and 6,
docs/protocol.md "Recording"): the municipality's policy is off, optional or
required; the verifier asks with `record`, the tablet answers the consent
question with `consent`, and the gateway tells both legs the state with
`recording`.  Policy off refuses `record` (recording_off); a refused consent
records nothing; with policy required the question comes at assignment, a
refusal ends the session (consent_refused), and `verified` is refused
(recording_required) without a consented recording.  Every step is in the
audit log with ids only.

These need no media: the refusals happen before anything is recorded.  The
recordings themselves (made through aiortc peers) are in
test_recording_media.py."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import DEFAULT_USERS, TEST_DATA, GatewayTestCase, describe_entries  # noqa: E402

REGISTRY = TEST_DATA / "registry-recording.json"
USERS = dict(DEFAULT_USERS, **{"v-miyako": ("verifier", "452025"),
                               "a-nikko": ("auditor", "092061")})


def detail_of(entry):
    d = entry.get("detail")
    return json.loads(d) if isinstance(d, str) else (d or {})


def find_event(entries, event, **detail):
    """Audit entries of `event` whose detail has the given fields."""
    return [e for e in entries if e.get("event") == event
            and all(detail_of(e).get(k) == v for k, v in detail.items())]


class AuditMixin:
    async def audited(self, event, session=None, **detail):
        entries = await self.gw.audit_api(session=session)
        found = find_event(entries, event, **detail)
        if not found:
            self.fail("no audit entry %s with %s; the log has:\n%s"
                      % (event, detail, describe_entries(entries)))
        return found


class RecordingPolicy(AuditMixin, GatewayTestCase):
    registry = REGISTRY
    users = USERS

    async def assigned(self, verifier_name, device):
        verifier = await self.staff(verifier_name)
        tablet = await self.device(device)
        session = (await self.request(tablet))["session"]
        await verifier.send({"type": "accept", "session": session})
        ta = await tablet.expect("assigned", session=session)
        va = await verifier.expect("assigned", session=session)
        return session, tablet, verifier, ta, va

    def recordings(self, session):
        return int(self.gw.sqlite("SELECT COUNT(*) FROM recording WHERE session_id = '%s'"
                                  % session).strip())

    async def test_policy_off_refuses_record(self):
        session, tablet, verifier, ta, va = await self.assigned("v-miyako", "TAB-AEON-1")
        self.assertEqual(ta.get("recording"), "off")
        self.assertEqual(va.get("recording"), "off")
        await verifier.send({"type": "record", "session": session, "action": "start",
                             "id": "rec-1"})
        err = await verifier.expect_error("recording_off", re="rec-1", session=session)
        self.assertTrue(err.get("message"))
        await tablet.expect_none("consent", 0.5)
        self.assertEqual(self.recordings(session), 0)
        await self.audited("record_refused", session, code="recording_off")
        # The session itself goes on (without media it may end not_verified:
        # `verified` needs media, media_not_seen in test_pages.py).
        await verifier.send({"type": "outcome", "session": session, "result": "not_verified"})
        await tablet.expect("ended", session=session, outcome="not_verified")

    async def test_optional_consent_refused_records_nothing(self):
        session, tablet, verifier, ta, va = await self.assigned("v-yasuoka", "TAB-NUKUTA-1")
        self.assertEqual(ta.get("recording"), "optional")
        # Nothing is asked before the verifier wants a recording.
        await tablet.expect_none("consent", 0.3)
        # Only the verifier records; only the tablet answers.
        await tablet.send({"type": "record", "session": session, "action": "start"})
        await tablet.expect_error("forbidden")
        await verifier.send({"type": "consent", "session": session, "given": True})
        await verifier.expect_error("forbidden")
        # An answer nobody asked for is refused.
        await tablet.send({"type": "consent", "session": session, "given": True, "id": "c0"})
        await tablet.expect_error("session_state", re="c0")

        await verifier.send({"type": "record", "session": session, "action": "start",
                             "id": "rec-1"})
        await tablet.expect("consent", session=session)
        await tablet.expect("recording", session=session, state="asking")
        await verifier.expect("recording", session=session, state="asking", re="rec-1")

        await tablet.send({"type": "consent", "session": session, "given": False, "id": "c1"})
        await tablet.expect("recording", session=session, state="refused", re="c1")
        await verifier.expect("recording", session=session, state="refused")
        # Asking again in the same session is refused with the code.
        await verifier.send({"type": "record", "session": session, "action": "start",
                             "id": "rec-2"})
        await verifier.expect_error("consent_refused", re="rec-2")
        await tablet.expect_none("consent", 0.3)
        self.assertEqual(self.recordings(session), 0)

        # Optional: the session goes on, and is not refused for the recording
        # (without media, `verified` gets media_not_seen, not recording_required).
        await verifier.send({"type": "outcome", "session": session, "result": "verified",
                             "id": "o-opt"})
        await verifier.expect_error("media_not_seen", re="o-opt")
        await verifier.send({"type": "outcome", "session": session, "result": "not_verified"})
        await tablet.expect("ended", session=session, outcome="not_verified", reason="outcome")
        entries = await self.gw.audit_api(session=session)
        events = [e["event"] for e in entries]
        for event in ("consent_asked", "consent_refused", "record_refused"):
            self.assertIn(event, events)
        self.assertNotIn("record_start", events)
        self.assertNotIn("consent_given", events)
        self.assertTrue(find_event(entries, "consent_asked", policy="optional"))

    async def test_required_asks_at_assignment_and_refusal_ends_session(self):
        session, tablet, verifier, ta, va = await self.assigned("v-nikko", "TAB-KIYOTAKI-1")
        self.assertEqual(ta.get("recording"), "required")
        await tablet.expect("consent", session=session)
        await tablet.expect("recording", session=session, state="asking")
        await verifier.expect("recording", session=session, state="asking")

        # Not verified without a recording made with consent.
        await verifier.send({"type": "outcome", "session": session, "result": "verified",
                             "id": "o1"})
        await verifier.expect_error("recording_required", re="o1", session=session)
        await self.audited("outcome_refused", session, code="recording_required")

        await tablet.send({"type": "consent", "session": session, "given": False})
        await tablet.expect("recording", session=session, state="refused")
        for leg in (tablet, verifier):
            await leg.expect("ended", session=session, reason="consent_refused", outcome=None)
        self.assertEqual(self.recordings(session), 0)
        row = self.gw.sqlite("SELECT state, reason FROM verification_session WHERE id = '%s'"
                             % session).strip()
        self.assertEqual(row, "ended|consent_refused")
        entries = await self.gw.audit_api(session=session)
        self.assertTrue(find_event(entries, "consent_asked", policy="required"))
        self.assertTrue(find_event(entries, "consent_refused"))
        self.assertTrue(find_event(entries, "session_ended", reason="consent_refused"))
        # The audit holds ids and codes only.
        for e in entries:
            self.assertNotIn("text", detail_of(e))

    async def test_required_consent_alone_is_not_a_recording(self):
        session, tablet, verifier, ta, va = await self.assigned("v-nikko", "TAB-KIYOTAKI-1")
        await tablet.expect("consent", session=session)
        await tablet.send({"type": "consent", "session": session, "given": True, "id": "c1"})
        # Consent given; media is not up, so nothing records yet.
        await tablet.expect("recording", session=session, state="consented", re="c1")
        await verifier.expect("recording", session=session, state="consented")
        await verifier.send({"type": "outcome", "session": session, "result": "verified",
                             "id": "o1"})
        await verifier.expect_error("recording_required", re="o1")
        # Other outcomes are the verifier's to give.
        await verifier.send({"type": "outcome", "session": session, "result": "not_verified"})
        await tablet.expect("ended", session=session, outcome="not_verified")
        self.assertEqual(self.recordings(session), 0)
        await self.audited("consent_given", session, policy="required")

    async def test_tablet_reconnecting_is_asked_again(self):
        session, tablet, verifier, ta, va = await self.assigned("v-nikko", "TAB-KIYOTAKI-1")
        await tablet.expect("consent", session=session)
        await tablet.close()
        tablet2 = await self.device("TAB-KIYOTAKI-1")
        await tablet2.expect("assigned", session=session, recording="required")
        await tablet2.expect("recording", session=session, state="asking")
        await tablet2.expect("consent", session=session)
        await tablet2.send({"type": "consent", "session": session, "given": False})
        await verifier.expect("ended", session=session, reason="consent_refused")


if __name__ == "__main__":
    harness.main()
