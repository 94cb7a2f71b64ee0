#!/usr/bin/python3
"""What the two listeners serve as pages, and the evidence rule for `verified`
(docs/protocol.md, "HTTP endpoints" and `media_not_seen`).

- The device listener's root is the counter kiosk, the staff listener's the
  staff login; the browser-test pages under /test/ answer 404 on both with
  the default config (`web.test_pages` off).
- `outcome` `verified` for a session that never went live is refused with
  `media_not_seen` (audited as outcome_refused) and the session goes on;
  `not_verified` then ends it.  (With media, test_live.py records `verified`.)
"""

import asyncio
import http.client
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import GatewayTestCase  # noqa: E402


def device_get(gw, path):
    """GET on the device listener with the demo tablet's certificate."""
    ctx = gw.ssl_context(cert=gw.device_files("TAB-NUKUTA-1"))
    conn = http.client.HTTPSConnection(harness.HOST, gw.device_port, context=ctx,
                                       timeout=harness.REPLY_TIMEOUT)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace"), resp
    finally:
        conn.close()


class Pages(GatewayTestCase):
    async def test_kiosk_at_device_root_and_no_test_pages(self):
        status, body, resp = await asyncio.to_thread(device_get, self.gw, "/")
        self.assertEqual(status, 200, body)
        self.assertIn('id="kiosk"', body)
        self.assertIn("connect-src 'self'", resp.getheader("content-security-policy") or "")
        status, body, _ = await self.gw.ahttp("GET", "/")
        self.assertEqual(status, 200)
        self.assertIn('id="login"', body)
        status, body, _ = await self.gw.ahttp("GET", "/verifier")  # verifier.html
        self.assertEqual(status, 200)
        self.assertIn('id="console"', body)
        for path in ("/test/tablet.html", "/test/verifier.js"):
            status, _, _ = await self.gw.ahttp("GET", path)
            self.assertEqual(status, 404, "staff listener " + path)
            status, _, _ = await asyncio.to_thread(device_get, self.gw, path)
            self.assertEqual(status, 404, "device listener " + path)
        # the library every page uses is served on both listeners
        status, body, _ = await asyncio.to_thread(device_get, self.gw, "/js/lib/errors.js")
        self.assertEqual(status, 200)
        self.assertIn("media_not_seen", body)

    async def test_verified_refused_before_live(self):
        verifier = await self.staff("v-yasuoka")
        tablet = await self.device("TAB-NUKUTA-1")
        session = (await self.request(tablet))["session"]
        await verifier.send({"type": "accept", "session": session})
        await verifier.expect("assigned", session=session)
        await verifier.send({"type": "outcome", "session": session, "result": "verified",
                             "id": "out-1"})
        e = await verifier.expect("error", re="out-1")
        self.assertEqual(e.get("code"), "media_not_seen", e)
        self.assertEqual(e.get("session"), session)
        await tablet.expect_none("ended", 0.5, session=session)
        await self.assert_audited("outcome_refused", session=session)
        await verifier.send({"type": "outcome", "session": session, "result": "not_verified",
                             "id": "out-2"})
        for leg in (tablet, verifier):
            e = await leg.expect("ended", session=session)
            self.assertEqual(e.get("outcome"), "not_verified")


if __name__ == "__main__":
    harness.main()
