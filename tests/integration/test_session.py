#!/usr/bin/python3
"""Verification sessions over the real gateway: request → queue → accept →
assigned → outcome → ended, random assignment, cancel and hangup, and the
audit trail they leave (docs/protocol.md, "Session lifecycle")."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import TEST_DATA, GatewayTestCase, describe_entries, find_audit  # noqa: E402


def has_entry(session):
    return lambda m: any(e.get("session") == session for e in m.get("entries", []))


def lacks_entry(session):
    return lambda m: all(e.get("session") != session for e in m.get("entries", []))


class HappyPath(GatewayTestCase):
    async def test_request_accept_outcome_ended_and_audited(self):
        gw = self.gw
        # Field-level checks run as subtests: a wrong field is reported, and
        # the session still goes on to show what else works.
        verifier = await self.staff("v-yasuoka")
        h = verifier.hello
        with self.subTest("verifier hello", hello=h):
            self.assertEqual(h.get("protocol"), 1)
            self.assertEqual(h.get("role"), "verifier")
            self.assertEqual(h.get("username"), "v-yasuoka")
            self.assertEqual(h.get("municipality"), "204111")
            self.assertIsInstance(h.get("limits", {}).get("max_message_bytes"), int)
        await verifier.expect("queue")  # the current queue follows hello

        tablet = await self.device("TAB-NUKUTA-1")
        h = tablet.hello
        with self.subTest("tablet hello", hello=h):
            self.assertEqual(h.get("protocol"), 1)
            self.assertEqual(h.get("role"), "tablet")
            self.assertEqual(h.get("device"), "TAB-NUKUTA-1")
            self.assertEqual(h.get("post_office"), "PO-NUKUTA")
            self.assertEqual(h.get("municipality"), "204111")
            procs = {p.get("id"): p for p in h.get("procedures", [])}
            # Q&A Q8: one tablet serves every procedure of its designation.
            for pid in ("mynumber.new", "ecert.signature", "ecert.user_auth", "juminhyo.copy"):
                self.assertIn(pid, procs)
            self.assertIs(procs["mynumber.new"].get("available"), True)
            self.assertTrue(procs["mynumber.new"].get("ja"))

        await tablet.send({"type": "request", "procedure": "mynumber.new", "id": "req-1"})
        queued = await tablet.expect("queued")
        session = queued.get("session")
        self.assertIsInstance(session, str)
        self.assertTrue(session)
        with self.subTest("queued", queued=queued):
            self.assertEqual(queued.get("procedure"), "mynumber.new")
            self.assertEqual(queued.get("position"), 1)
            self.assertIsInstance(queued.get("wait_seconds"), (int, float))

        q = await verifier.expect("queue", pred=has_entry(session))
        entry = next(e for e in q["entries"] if e["session"] == session)
        with self.subTest("queue entry", entry=entry):
            self.assertEqual(entry.get("post_office"), "PO-NUKUTA")
            self.assertEqual(entry.get("procedure"), "mynumber.new")
            self.assertIsInstance(entry.get("waiting_seconds"), (int, float))
            self.assertGreaterEqual(entry["waiting_seconds"], 0)
            self.assertEqual(entry.get("post_office_name"), "温田郵便局")
            self.assertTrue(entry.get("procedure_ja"))

        await verifier.send({"type": "accept", "session": session, "id": "acc-1"})
        for leg, role in ((tablet, "tablet"), (verifier, "verifier")):
            a = await leg.expect("assigned", session=session)
            with self.subTest("assigned", assigned=a):
                self.assertEqual(a.get("role"), role)
                self.assertEqual(a.get("procedure"), "mynumber.new")
                self.assertEqual(a.get("post_office"), "PO-NUKUTA")
                self.assertIsInstance(a.get("ice_servers"), list)
            await leg.expect("state", session=session, state="assigned")
        await verifier.expect("queue", pred=lacks_entry(session))

        # (media is test_live.py, `verified` needs it) the verifier records the outcome
        await verifier.send({"type": "outcome", "session": session, "result": "not_verified",
                             "id": "out-1"})
        for leg in (tablet, verifier):
            e = await leg.expect("ended", session=session)
            self.assertEqual(e.get("outcome"), "not_verified")
            self.assertEqual(e.get("reason"), "outcome")

        # the auditor's view, while the gateway runs
        entries = await gw.audit_api(session=session)
        self.assertTrue(entries, "GET /api/audit?session=%s returned nothing" % session)
        for e in entries:
            self.assertEqual(e.get("session"), session, "filter by session")
        self.assert_session_audited(entries, session)
        status, body, _ = await gw.ahttp("GET", "/api/audit/verify", cookie=gw.auditor_cookie)
        self.assertEqual(status, 200, body)
        self.assertIs(body.get("ok"), True, body)
        with self.subTest("GET /api/audit/verify body", body=body):
            self.assertIsInstance(body.get("entries"), int)
            self.assertGreater(body["entries"], 0)

        # the operator's view: clean shutdown, export, verify
        for c in self.clients:
            await c.close()
        await gw.stop()
        exported = [e for e in gw.audit_export() if e.get("session") == session]
        self.assert_session_audited(exported, session)
        for e in exported:
            self.assertRegex(e.get("hash", ""), r"^[0-9a-f]{64}$", e)
            self.assertRegex(e.get("prev_hash", ""), r"^[0-9a-f]{64}$", e)
            if not e.get("event", "").startswith("audit"):  # not the auditor's own reads
                self.assertEqual(e.get("municipality"), "204111", e)
                self.assertEqual(e.get("post_office"), "PO-NUKUTA", e)
        only = gw.audit_export("--post-office", "PO-NUKUTA")
        self.assertTrue(only)
        self.assertTrue(all(e.get("post_office") == "PO-NUKUTA" for e in only), only)
        r = gw.cli("audit", "verify", check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def assert_session_audited(self, entries, session):
        events = [e.get("event") for e in entries]
        msg = "audit entries of session %s:\n%s" % (session, describe_entries(entries))
        self.assertTrue(any(ev == "request" for ev in events), msg)
        self.assertTrue(any(ev in ("accept", "assigned", "assign") for ev in events), msg)
        self.assertTrue(any(ev in ("outcome", "ended", "end") for ev in events), msg)
        self.assertTrue(find_audit(entries, "not_verified"), "the outcome is in the audit\n" + msg)
        seqs = [e.get("seq") for e in entries]
        self.assertEqual(seqs, sorted(seqs), "entries come in seq order")

    async def test_two_verifiers_race_for_one_request(self):
        v1 = await self.staff("v-yasuoka")
        v2 = await self.staff("v-yasuoka2")
        tablet = await self.device("TAB-NUKUTA-1")
        session = (await self.request(tablet))["session"]
        await v1.expect("queue", pred=has_entry(session))
        await v2.expect("queue", pred=has_entry(session))
        await v1.send({"type": "accept", "session": session, "id": "a"})
        await v1.expect("assigned", session=session)
        await v2.send({"type": "accept", "session": session, "id": "b"})
        err = await v2.expect_error("already_assigned")
        self.assertEqual(err.get("re"), "b")
        await v2.expect_none("assigned", 0.5)
        # a verifier in an unfinished session may not take a second one
        t2 = await self.device("TAB-NUKUTA-2")
        s2 = (await self.request(t2))["session"]
        await v1.expect("queue", pred=has_entry(s2))
        await v1.send({"type": "accept", "session": s2, "id": "c"})
        await v1.expect_error("verifier_busy", re="c")
        # the other one may
        await v2.send({"type": "accept", "session": s2})
        await v2.expect("assigned", session=s2, role="verifier")
        await t2.expect("assigned", session=s2, role="tablet")

    async def test_not_aborted_without_reason_and_not_verified(self):
        verifier = await self.staff("v-yasuoka")
        tablet = await self.device("TAB-NUKUTA-1")
        session = (await self.request(tablet))["session"]
        await verifier.send({"type": "accept", "session": session})
        await verifier.expect("assigned", session=session)
        await verifier.send({"type": "outcome", "session": session, "result": "aborted",
                             "id": "x"})
        await verifier.expect_error("schema_invalid", re="x")
        await verifier.send({"type": "outcome", "session": session, "result": "aborted",
                             "reason": "video too dark to read the card"})
        for leg in (tablet, verifier):
            e = await leg.expect("ended", session=session)
            self.assertEqual(e.get("outcome"), "aborted")
        await self.assert_audited("aborted", session=session)

    async def test_tablet_cancels_waiting_request(self):
        verifier = await self.staff("v-yasuoka")
        tablet = await self.device("TAB-NUKUTA-1")
        session = (await self.request(tablet))["session"]
        await verifier.expect("queue", pred=has_entry(session))
        await tablet.send({"type": "cancel", "session": session})
        e = await tablet.expect("ended", session=session)
        self.assertEqual(e.get("reason"), "cancelled")
        self.assertIsNone(e.get("outcome"))
        await verifier.expect("queue", pred=lacks_entry(session))
        await verifier.send({"type": "accept", "session": session, "id": "late"})
        err = await verifier.expect("error", re="late")
        self.assertIn(err.get("code"), ("session_state", "session_unknown"), err)
        # the device may ask again once its request is finished
        again = await self.request(tablet, id_="req-2")
        self.assertNotEqual(again["session"], session)

    async def test_replies_carry_the_id_back_as_re(self):
        # docs/protocol.md: "replies and errors caused by that message carry it back as re"
        tablet = await self.device("TAB-NUKUTA-1")
        await tablet.send({"type": "request", "procedure": "mynumber.new", "id": "req-1"})
        queued = await tablet.expect("queued")
        self.assertEqual(queued.get("re"), "req-1", queued)

    async def test_second_request_while_pending_is_refused(self):
        tablet = await self.device("TAB-NUKUTA-1")
        await self.request(tablet)
        await tablet.send({"type": "request", "procedure": "ecert.signature", "id": "two"})
        await tablet.expect_error("request_pending", re="two")

    async def test_hangup_ends_for_both(self):
        verifier = await self.staff("v-yasuoka")
        tablet = await self.device("TAB-NUKUTA-1")
        session = (await self.request(tablet))["session"]
        await verifier.send({"type": "accept", "session": session})
        await tablet.expect("assigned", session=session)
        await tablet.send({"type": "hangup", "session": session})
        for leg in (tablet, verifier):
            e = await leg.expect("ended", session=session)
            self.assertEqual(e.get("reason"), "hangup")
        await self.assert_audited("hangup", session=session)

    async def test_tablet_may_not_accept_or_record_outcome(self):
        tablet = await self.device("TAB-NUKUTA-1")
        session = (await self.request(tablet))["session"]
        await tablet.send({"type": "accept", "session": session, "id": "a"})
        await tablet.expect_error("forbidden", re="a")
        await tablet.send({"type": "outcome", "session": session, "result": "verified",
                           "id": "o"})
        await tablet.expect_error("forbidden", re="o")

    async def test_subprotocol_madoguchi_v1(self):
        tablet = await self.device("TAB-NUKUTA-1", subprotocols=["madoguchi.v1"])
        self.assertEqual(tablet.ws.subprotocol, "madoguchi.v1")
        verifier = await self.staff("v-yasuoka", subprotocols=["madoguchi.v1"])
        self.assertEqual(verifier.ws.subprotocol, "madoguchi.v1")

    async def test_wrong_municipality_cannot_see_or_accept(self):
        nikko = await self.staff("v-nikko")
        yasuoka = await self.staff("v-yasuoka")
        tablet = await self.device("TAB-NUKUTA-1")
        session = (await self.request(tablet))["session"]
        await yasuoka.expect("queue", pred=has_entry(session))
        await nikko.expect_none("queue", 0.5, pred=has_entry(session))
        await nikko.send({"type": "accept", "session": session, "id": "steal"})
        err = await nikko.expect_error("wrong_municipality", re="steal")
        self.assertEqual(err.get("session"), session)
        await tablet.expect_none("assigned", 0.3)
        await self.assert_audited("wrong_municipality", session=session)
        # the request is still there for its own municipality
        await yasuoka.send({"type": "accept", "session": session})
        await tablet.expect("assigned", session=session)


class RandomAssignment(GatewayTestCase):
    registry = TEST_DATA / "registry-random.json"

    async def test_assigned_to_idle_verifier_without_accept(self):
        verifier = await self.staff("v-yasuoka")
        await verifier.expect("queue")
        tablet = await self.device("TAB-NUKUTA-1")
        await tablet.send({"type": "request", "procedure": "mynumber.new"})
        a = await tablet.expect("assigned")
        session = a["session"]
        self.assertEqual(a.get("role"), "tablet")
        v = await verifier.expect("assigned", session=session)
        self.assertEqual(v.get("role"), "verifier")
        self.assertEqual(v.get("post_office"), "PO-NUKUTA")
        await verifier.expect("state", session=session, state="assigned")
        await tablet.expect("state", session=session, state="assigned")
        # the session is the verifier's: outcome works without any accept
        await verifier.send({"type": "outcome", "session": session, "result": "not_verified"})
        e = await tablet.expect("ended", session=session)
        self.assertEqual(e.get("outcome"), "not_verified")

    async def test_waits_until_a_verifier_is_idle(self):
        tablet = await self.device("TAB-NUKUTA-1")
        session = (await self.request(tablet))["session"]
        await tablet.expect_none("assigned", 0.5)
        verifier = await self.staff("v-yasuoka")
        a = await verifier.expect("assigned", session=session)
        self.assertEqual(a.get("role"), "verifier")
        await tablet.expect("assigned", session=session)

    async def test_busy_verifier_is_not_assigned_twice(self):
        verifier = await self.staff("v-yasuoka")
        t1 = await self.device("TAB-NUKUTA-1")
        t2 = await self.device("TAB-NUKUTA-2")
        await t1.send({"type": "request", "procedure": "mynumber.new"})
        s1 = (await t1.expect("assigned"))["session"]
        await verifier.expect("assigned", session=s1)
        s2 = (await self.request(t2))["session"]
        await t2.expect_none("assigned", 0.5)
        await verifier.send({"type": "outcome", "session": s1, "result": "not_verified"})
        await verifier.expect("ended", session=s1)
        # now idle: the waiting request goes to them
        await verifier.expect("assigned", session=s2)
        await t2.expect("assigned", session=s2)


class Takeover(GatewayTestCase):
    async def test_new_connection_takes_over_a_leg_still_held(self):
        """A kiosk that reconnects after a network cut, before the gateway
        has seen its old socket die, goes on with the same session; the old
        socket is told (session_moved) and closed as a refusal, so that it
        does not come back and take the session again."""
        verifier = await self.staff("v-yasuoka")
        tablet = await self.device("TAB-NUKUTA-1")
        session = (await self.request(tablet))["session"]
        await verifier.send({"type": "accept", "session": session})
        await tablet.expect("assigned", session=session)
        await verifier.expect("assigned", session=session)

        tablet2 = await self.device("TAB-NUKUTA-1")
        await tablet2.expect("assigned", session=session)
        await tablet2.expect("state", session=session, state="assigned")
        await tablet.expect_error("session_moved")
        await tablet.expect_closed()
        await verifier.expect_none("ended", 1.0, session=session)

        # The same for the verifier's console.
        verifier2 = await self.staff("v-yasuoka")
        await verifier2.expect("assigned", session=session)
        await verifier.expect_error("session_moved")
        await verifier.expect_closed()

        await tablet2.send({"type": "hangup", "session": session})
        await verifier2.expect("ended", session=session)
        entries = await self.gw.audit_api(session=session)
        self.assertEqual(len(find_audit(entries, "leg_rejoined")), 2, describe_entries(entries))


if __name__ == "__main__":
    harness.main()

