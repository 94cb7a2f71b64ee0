#!/usr/bin/python3
"""The auditor's API (docs/protocol.md, "Auditor API"): an auditor bound to a
municipality gets nothing of another municipality through any endpoint
(issue #11 item 5: refuse other values, filter when absent); the session list
with JST whole-day filters (issue #10: a same-day filter returns that day's
sessions); the case view; the export that `madoguchi audit verify --export`
checks offline."""

import asyncio
import hashlib
import json
import sys
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import GatewayTestCase  # noqa: E402
from webrtc import LIVE_TIMEOUT, Leg  # noqa: E402  (also narrows ICE to loopback)

USERS = dict(harness.DEFAULT_USERS)
USERS.update({
    "a-yasuoka": ("auditor", "204111"),  # municipality A: PO-NUKUTA
    "a-nikko": ("auditor", "092061"),  # municipality B: PO-KIYOTAKI
})

JST = 9 * 3600


def jst_date(epoch_s):
    return time.strftime("%Y-%m-%d", time.gmtime(epoch_s + JST))


class AuditorBase(GatewayTestCase):
    users = USERS

    async def one_session(self, verifier_name, device, result="verified"):
        verifier = await self.staff(verifier_name)
        tablet = await self.device(device)
        session = (await self.request(tablet))["session"]
        await verifier.send({"type": "accept", "session": session})
        await verifier.expect("assigned", session=session)
        legs = []
        if result == "verified":
            # `verified` needs the tablet's media seen on the verifier's leg
            # (media_not_seen): real aiortc legs until `quality` shows it.
            await tablet.expect("assigned", session=session)
            legs = [Leg(tablet, session), Leg(verifier, session)]
            await asyncio.gather(*(leg.offer() for leg in legs))
            await asyncio.gather(*(leg.apply_answer() for leg in legs))
            await verifier.expect(
                "quality", session=session, leg="verifier", timeout=LIVE_TIMEOUT,
                pred=lambda m: m.get("stats", {}).get("counters", {}).get("packets_out", 0) > 0)
        msg = {"type": "outcome", "session": session, "result": result}
        if result == "aborted":
            msg["reason"] = "quality"
        await verifier.send(msg)
        await tablet.expect("ended", session=session)
        await verifier.expect("ended", session=session)
        for leg in legs:
            await leg.close()
        await tablet.close()
        await verifier.close()
        return session

    async def get(self, cookie, path, **query):
        q = urllib.parse.urlencode(query)
        return await self.gw.ahttp("GET", path + ("?" + q if q else ""), cookie=cookie)


class Scope(AuditorBase):
    async def test_auditor_of_one_municipality_gets_nothing_of_another(self):
        # one session in each municipality
        sid_a = await self.one_session("v-yasuoka", "TAB-NUKUTA-1")
        sid_b = await self.one_session("v-nikko", "TAB-KIYOTAKI-1", "aborted")
        a = await self.gw.login_ok("a-yasuoka")
        b = await self.gw.login_ok("a-nikko")

        def only_b(entries, what):
            for e in entries:
                self.assertEqual(e.get("municipality"), "092061", "%s leaks %r" % (what, e))
                self.assertNotEqual(e.get("session"), sid_a, "%s leaks %r" % (what, e))
                if e.get("actor") != "staff:a-nikko":  # B's own queries quote what B typed
                    self.assertNotIn(sid_a, json.dumps(e), what)

        # B's auditor, on the trail itself: filtered when absent ...
        status, body, _ = await self.get(b, "/api/audit")
        self.assertEqual(status, 200, body)
        only_b(body["entries"], "GET /api/audit")
        self.assertTrue(any(e.get("session") == sid_b for e in body["entries"]), body)
        status, body, _ = await self.get(b, "/api/audit", session=sid_a)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["entries"], [], "by session id")
        status, body, _ = await self.get(b, "/api/audit", post_office="PO-NUKUTA")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["entries"], [], "by post office")
        # the positive control: A's auditor sees A's session everywhere
        status, body, _ = await self.get(a, "/api/audit")
        self.assertEqual(status, 200, body)
        self.assertTrue(any(e.get("session") == sid_a for e in body["entries"]), body)
        status, body, _ = await self.get(a, "/api/audit/sessions")
        self.assertEqual(status, 200, body)
        self.assertEqual([s["id"] for s in body["sessions"]], [sid_a], body)
        status, body, _ = await self.get(a, "/api/audit/case", session=sid_a)
        self.assertEqual(status, 200, body)
        status, text, _ = await self.get(a, "/api/audit/export")
        self.assertEqual(status, 200, text)
        self.assertIn(sid_a, text)

        # ... and on the session list, the case and the export
        status, body, _ = await self.get(b, "/api/audit/sessions")
        self.assertEqual(status, 200, body)
        self.assertEqual([s["id"] for s in body["sessions"]], [sid_b], body)
        self.assertEqual(body["total"], 1, body)
        status, body, _ = await self.get(b, "/api/audit/sessions", post_office="PO-NUKUTA")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["sessions"], [], body)
        status, text, _ = await self.get(b, "/api/audit/export")
        self.assertEqual(status, 200, text)
        lines = [json.loads(x) for x in text.splitlines() if x.strip()]
        only_b([x for x in lines if "manifest" not in x], "GET /api/audit/export")

        # what the filters offer, and the chain status (one chain: counts only)
        status, body, _ = await self.get(b, "/api/audit/options")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["municipality"], "092061", body)
        self.assertEqual([p["id"] for p in body["post_offices"]], ["PO-KIYOTAKI"], body)
        self.assertEqual(body["verifiers"], ["v-nikko"], body)
        status, body, _ = await self.get(b, "/api/audit/verify")
        self.assertEqual(status, 200, body)
        self.assertEqual(set(body), {"ok", "entries", "checkpoints", "last_checkpoint",
                                     "last_checkpoint_at", "pinned"}, body)
        # a verifier is not an auditor, whatever its municipality
        v = await self.gw.login_ok("v-nikko")
        for path in ("/api/audit", "/api/audit/sessions", "/api/audit/options",
                     "/api/audit/verify", "/api/audit/export"):
            status, body, _ = await self.get(v, path)
            self.assertEqual(status, 403, "%s as a verifier: %r" % (path, body))
        status, body, _ = await self.get(v, "/api/audit/case", session=sid_b)
        self.assertEqual(status, 403, body)

        # ... refused when it names the other municipality
        for path in ("/api/audit", "/api/audit/sessions", "/api/audit/export",
                     "/api/audit/options"):
            status, body, _ = await self.get(b, path, municipality="204111")
            self.assertEqual(status, 403, "%s?municipality=204111: %r" % (path, body))
            self.assertEqual(body.get("code"), "forbidden", body)

        # a case or its evidence of A does not exist for B (no existence oracle)
        status, body, _ = await self.get(b, "/api/audit/case", session=sid_a)
        self.assertEqual(status, 404, body)
        status, body, _ = await self.gw.ahttp(
            "POST", "/api/audit/evidence", cookie=b,
            body={"session": sid_a, "file": "still-1", "reason": "確認のため"})
        self.assertEqual(status, 404, body)
        status, body, _ = await self.gw.ahttp(
            "POST", "/api/audit/evidence", cookie=b,
            body={"session": sid_a, "file": "transcript", "reason": "確認のため"})
        self.assertEqual(status, 404, body)

        # the sealed outcome note of B's aborted session: not A's, not a
        # verifier's, B's only after a reason, audited with its hash
        status, body, _ = await self.get(b, "/api/audit/case", session=sid_b)
        self.assertEqual((status, body["session"]["has_note"], body["recordings"]),
                         (200, True, []), body)
        self.assertNotIn("quality", json.dumps(body["session"]), "the note is not in the case")
        status, body, _ = await self.gw.ahttp("POST", "/api/audit/note", cookie=a,
                                              body={"session": sid_b, "reason": "確認のため"})
        self.assertEqual(status, 404, body)
        status, body, _ = await self.gw.ahttp("POST", "/api/audit/note", cookie=v,
                                              body={"session": sid_b, "reason": "確認のため"})
        self.assertEqual(status, 403, body)
        status, body, _ = await self.gw.ahttp("POST", "/api/audit/note", cookie=b,
                                              body={"session": sid_b, "reason": "  "})
        self.assertEqual((status, body.get("code")), (400, "reason_required"), body)
        status, body, _ = await self.gw.ahttp("POST", "/api/audit/note", cookie=a,
                                              body={"session": sid_a, "reason": "確認のため"})
        self.assertEqual((status, body.get("code")), (404, "not_found"), "no note: %r" % body)
        status, body, _ = await self.gw.ahttp("POST", "/api/audit/note", cookie=b,
                                              body={"session": sid_b, "reason": "照会への回答"})
        self.assertEqual((status, body.get("note"), body.get("outcome")),
                         (200, "quality", "aborted"), body)
        status, body, _ = await self.get(b, "/api/audit", session=sid_b)
        viewed = [e for e in body["entries"] if e["event"] == "note_viewed"]
        self.assertEqual(len(viewed), 1, body)
        self.assertEqual(viewed[0]["detail"], {
            "reason_sha256": hashlib.sha256("照会への回答".encode()).hexdigest()})


class Sessions(AuditorBase):
    async def test_same_day_jst_filter_and_outcome_counts(self):
        s1 = await self.one_session("v-yasuoka", "TAB-NUKUTA-1", "verified")
        s2 = await self.one_session("v-yasuoka", "TAB-NUKUTA-2", "not_verified")
        s3 = await self.one_session("v-yasuoka", "TAB-NUKUTA-3", "aborted")
        cookie = await self.gw.login_ok("a-audit")
        today = jst_date(time.time())
        # from = until = today (JST, whole day, inclusive)
        status, body, _ = await self.get(cookie, "/api/audit/sessions", **{"from": today, "until": today})
        self.assertEqual(status, 200, body)
        self.assertEqual([s["id"] for s in body["sessions"]], [s3, s2, s1], "newest first")
        self.assertEqual(body["counts"], {"verified": 1, "not_verified": 1, "aborted": 1}, body)
        # the same day written as ISO instants with the +09:00 offset
        status, body, _ = await self.get(cookie, "/api/audit/sessions",
                                         **{"from": today + "T00:00:00+09:00",
                                            "until": today + "T23:59:59.999+09:00"})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["total"], 3, body)
        # the day before is empty
        yesterday = jst_date(time.time() - 86400)
        status, body, _ = await self.get(cookie, "/api/audit/sessions",
                                         **{"from": yesterday, "until": yesterday})
        self.assertEqual((status, body["total"]), (200, 0), body)
        # filters and paging
        status, body, _ = await self.get(cookie, "/api/audit/sessions", outcome="not_verified")
        self.assertEqual([s["id"] for s in body["sessions"]], [s2], body)
        status, body, _ = await self.get(cookie, "/api/audit/sessions", limit="2", offset="2")
        self.assertEqual(([s["id"] for s in body["sessions"]], body["total"]), ([s1], 3), body)
        status, body, _ = await self.get(cookie, "/api/audit/sessions", post_office="PO-NUKUTA",
                                         verifier="v-yasuoka", procedure="mynumber.new")
        self.assertEqual(body["total"], 3, body)
        status, body, _ = await self.get(cookie, "/api/audit/sessions", **{"from": "2026-13-01"})
        self.assertEqual(status, 400, body)

        # the case: who, where, what, when, and a timeline in order
        status, case, _ = await self.get(cookie, "/api/audit/case", session=s3)
        self.assertEqual(status, 200, case)
        self.assertEqual(case["session"]["outcome"], "aborted", case)
        self.assertEqual(case["session"]["post_office"], "PO-NUKUTA", case)
        self.assertEqual(case["session"]["post_office_name"], "温田郵便局", case)
        self.assertEqual(case["session"]["device"], "TAB-NUKUTA-3", case)
        events = [e["event"] for e in case["timeline"]]
        self.assertIn("request", events)
        self.assertIn("outcome", events)
        seqs = [e["seq"] for e in case["timeline"]]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(case["evidence"], [], case)

        # viewing a case is itself audited
        status, body, _ = await self.get(cookie, "/api/audit", session=s3)
        self.assertTrue(any(e["event"] == "case_viewed" for e in body["entries"]), body)


class Export(AuditorBase):
    async def test_export_verifies_offline_and_names_an_altered_entry(self):
        await self.one_session("v-yasuoka", "TAB-NUKUTA-1", "verified")
        cookie = await self.gw.login_ok("a-audit")
        status, text, resp = await self.get(cookie, "/api/audit/export", post_office="PO-NUKUTA")
        self.assertEqual(status, 200, text)
        self.assertIn("attachment", resp.getheader("Content-Disposition") or "")
        path = self.tmp / "export.jsonl"
        path.write_text(text)
        pub = self.gw.dir / "audit-signing.key.pub"
        r = self.gw.cli("audit", "verify", "--export", str(path), check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lines = text.splitlines()
        manifest = json.loads(lines[0])["manifest"]
        self.assertTrue(manifest["checkpoint"]["signature"], manifest)
        self.assertEqual(manifest["entries"], len(lines) - 1, manifest)
        # alter one entry: verification fails naming it
        victim = json.loads(lines[2])
        victim["actor"] = "staff:someone-else"
        lines[2] = json.dumps(victim, ensure_ascii=False)
        path.write_text("\n".join(lines) + "\n")
        r = self.gw.cli("audit", "verify", "--export", str(path), check=False)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout + r.stderr, r"\bseq[ =:#]*%d\b" % victim["seq"])
        del pub
        # the export is audited
        status, body, _ = await self.get(cookie, "/api/audit")
        self.assertTrue(any(e["event"] == "audit_exported" for e in body["entries"]), body)


if __name__ == "__main__":
    harness.main()
