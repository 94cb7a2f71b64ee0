#!/usr/bin/python3
"""The admin API (docs/protocol.md, "Admin API"): only an admin gets in; its
changes are the command line's (the same refusal line for a simplified post
office, the same audit events); a TOTP reset from either front end gives a
new secret that logs in while the old one no longer does; unlock and disable
act on logins at once."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import GatewayTestCase  # noqa: E402

USERS = dict(harness.DEFAULT_USERS)
USERS.update({"adm": ("admin", None), "a-nikko": ("auditor", "092061")})

ENDPOINTS = [
    ("GET", "/api/admin/registry", None),
    ("POST", "/api/admin/registry/import", {"document": {"municipalities": []}}),
    ("POST", "/api/admin/procedures/enable", {"procedure": "mynumber.renewal"}),
    ("GET", "/api/admin/devices", None),
    ("POST", "/api/admin/devices/issue", {"device": "TAB-X", "post_office": "PO-NUKUTA"}),
    ("POST", "/api/admin/devices/status", {"device": "TAB-NUKUTA-1", "status": "revoked"}),
    ("GET", "/api/admin/staff", None),
    ("POST", "/api/admin/staff/add", {"username": "x", "role": "admin",
                                      "password": "a long enough password"}),
    ("POST", "/api/admin/staff/action", {"username": "v-yasuoka", "action": "disable"}),
]


class AdminApi(GatewayTestCase):
    users = USERS

    async def test_admin_only_same_rules_as_the_cli(self):
        # nobody but an admin: no cookie 401, auditor and verifier 403, nothing changed
        cookies = {None: None, "a-nikko": await self.gw.login_ok("a-nikko"),
                   "a-audit": await self.gw.login_ok("a-audit"),
                   "v-yasuoka": await self.gw.login_ok("v-yasuoka")}
        for who, cookie in cookies.items():
            for method, path, body in ENDPOINTS:
                status, reply, _ = await self.gw.ahttp(method, path, body=body, cookie=cookie)
                self.assertEqual(status, 401 if who is None else 403,
                                 "%s %s as %s: %r" % (method, path, who, reply))
        self.assertEqual(self.gw.sqlite("SELECT status FROM device WHERE id='TAB-NUKUTA-1'").strip(),
                         "active")
        adm = await self.gw.login_ok("adm")

        # the same refusal line as `registry import`
        doc = harness.SOURCE_ROOT / "tests" / "data" / "registry-simplified-council.json"
        status, reply, _ = await self.gw.ahttp(
            "POST", "/api/admin/registry/import", cookie=adm,
            body={"document": json.loads(doc.read_text())})
        self.assertEqual(status, 200, reply)
        self.assertEqual((reply["ok"], reply["refused"]), (False, 1), reply)
        expected = (doc.parent / "registry-simplified-council.expected").read_text().splitlines()
        self.assertEqual(reply["report"], expected)

        # TOTP reset from the console: the new secret logs in, the old does not
        old_secret = self.gw.secrets["v-nikko"]
        status, reply, _ = await self.gw.ahttp("POST", "/api/admin/staff/action", cookie=adm,
                                               body={"username": "v-nikko",
                                                     "action": "reset_totp"})
        self.assertEqual(status, 200, reply)
        self.assertTrue(reply["qr_svg"].startswith("<svg"), reply)
        new_secret = harness.secret_from_otpauth(reply["otpauth"])
        self.assertNotEqual(new_secret, old_secret)
        status, _, _ = await self.gw.login("v-nikko", code=harness.totp(old_secret))
        self.assertEqual(status, 401)
        self.gw.secrets["v-nikko"] = new_secret
        self.gw.last_step.pop("v-nikko", None)
        await self.gw.login_ok("v-nikko")

        # ... and from the command line, the same function
        out = self.gw.cli("user", "reset-totp", "v-nikko").stdout.strip()
        self.gw.secrets["v-nikko"] = harness.secret_from_otpauth(out)
        self.gw.last_step.pop("v-nikko", None)
        await self.gw.login_ok("v-nikko")

        # disable ends logins and sessions; enable allows them again
        v = cookies["v-yasuoka"]
        status, reply, _ = await self.gw.ahttp("POST", "/api/admin/staff/action", cookie=adm,
                                               body={"username": "v-yasuoka", "action": "disable"})
        self.assertEqual(status, 200, reply)
        status, _, _ = await self.gw.ahttp("GET", "/api/me", cookie=v)
        self.assertEqual(status, 401)
        status, _, _ = await self.gw.login("v-yasuoka")
        self.assertEqual(status, 401)
        self.gw.cli("user", "enable", "v-yasuoka")
        await self.gw.login_ok("v-yasuoka")

        entries = await self.gw.audit_api()
        events = [(e["event"], e["actor"]) for e in entries
                  if e["event"].startswith("staff_") or e["event"] == "registry_refused"]
        self.assertIn(("registry_refused", "staff:adm"), events)
        self.assertIn(("staff_totp_reset", "staff:adm"), events)
        self.assertIn(("staff_totp_reset", "operator"), events)
        self.assertIn(("staff_disabled", "staff:adm"), events)
        self.assertIn(("staff_enabled", "operator"), events)


if __name__ == "__main__":
    harness.main()
