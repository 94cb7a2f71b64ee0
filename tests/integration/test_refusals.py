#!/usr/bin/python3
"""Refusals on the device listener: the registry's legal rules (simplified
offices, designations, periods, the terminal upgrade) and the device's own
status and certificate.  Each refusal has its own error code
(docs/protocol.md, "Error codes") and leaves an audit entry."""

import asyncio
import ssl
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import websockets  # noqa: E402

import harness  # noqa: E402
from harness import TEST_DATA, GatewayTestCase  # noqa: E402

RULES_DEVICES = dict(harness.DEFAULT_DEVICES, **{
    "TAB-OLD-1": "PO-TEST-OLD",
    "TAB-FUTURE-1": "PO-TEST-FUTURE",
})


class RequestRefusals(GatewayTestCase):
    """Sample registry (data/sample-registry.json)."""

    async def refused(self, device, procedure, code, post_office):
        tablet = await self.device(device)
        await tablet.send({"type": "request", "procedure": procedure, "id": "r"})
        err = await tablet.expect_error(code)
        self.assertEqual(err.get("re"), "r", err)
        self.assertTrue(err.get("message"), "errors carry a human message: %s" % err)
        await tablet.expect_none("queued", 0.2)
        await self.assert_audited(code, post_office=post_office)
        # a refusal is not a disconnection: the tablet may ask for something else
        self.assertTrue(tablet.is_open(), tablet.transcript())
        return tablet

    async def test_simplified_post_office(self):
        # Q&A Q11: a simplified (kan'i) office can never handle mynumber.new
        await self.refused("TAB-KANI-1", "mynumber.new", "post_office_simplified",
                           "PO-SAMPLE-KANI")

    async def test_procedure_not_designated(self):
        # PO-NUKUTA's designation does not list application_support
        tablet = await self.refused("TAB-NUKUTA-1", "application_support",
                                    "procedure_not_designated", "PO-NUKUTA")
        # and the same tablet's designated procedure still works
        await self.request(tablet, "ecert.signature", id_="ok")

    async def test_procedure_unknown(self):
        await self.refused("TAB-NUKUTA-1", "mynumber.teleport", "procedure_unknown",
                           "PO-NUKUTA")

    async def test_designation_expired_miyakonojo(self):
        # PO-MIYAKONOJO-AEON's designation ended 2026-03-31 (JST)
        if harness.time.gmtime(harness.time.time() + 9 * 3600)[:3] <= (2026, 3, 31):
            self.skipTest("the sample designation has not ended yet")
        await self.refused("TAB-AEON-1", "mynumber.new", "designation_expired",
                           "PO-MIYAKONOJO-AEON")

    async def test_tablet_hello_lists_only_designated_procedures(self):
        tablet = await self.device("TAB-KANI-1")
        ids = [p.get("id") for p in tablet.hello.get("procedures", [])]
        self.assertNotIn("mynumber.new", ids, tablet.hello)
        aeon = await self.device("TAB-AEON-1")
        ids = [p.get("id") for p in aeon.hello.get("procedures", [])]
        self.assertEqual(ids, [], "an expired designation offers nothing today: %s" % aeon.hello)

    async def test_disabled_device(self):
        tablet = await self.device("TAB-NUKUTA-1")
        self.gw.cli("device", "disable", "TAB-NUKUTA-1")
        await tablet.close()
        c = await self.gw.connect_device("TAB-NUKUTA-1", expect_hello=False)
        self.clients.append(c)
        err = await c.expect("error")
        self.assertEqual(err.get("code"), "device_disabled", c.transcript())
        await c.expect_closed()
        self.assertNotIn("hello", [m.get("type") for m in c.log], c.transcript())
        await self.assert_audited("device_disabled")
        # enabling it again lets it in
        self.gw.cli("device", "enable", "TAB-NUKUTA-1")
        again = await self.device("TAB-NUKUTA-1")
        self.assertEqual(again.hello.get("device"), "TAB-NUKUTA-1")

    async def test_no_client_certificate(self):
        c = await self.gw.connect_device("TAB-NUKUTA-1", cert=False, expect_hello=False,
                                         name="no-cert")
        self.clients.append(c)
        await c.expect_error("device_certificate_required")
        await c.expect_closed()
        self.assertNotIn("hello", [m.get("type") for m in c.log], c.transcript())
        await self.assert_alive()

    async def test_certificate_from_another_ca(self):
        # A certificate naming a real device and post office, but self-signed.
        key = self.tmp / "rogue.key"
        crt = self.tmp / "rogue.crt"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", "2", "-subj", "/O=madoguchi-device/OU=PO-NUKUTA/CN=TAB-NUKUTA-1",
             "-keyout", str(key), "-out", str(crt)],
            check=True, capture_output=True)
        await self.assert_refused_at_tls((str(crt), str(key)))
        await self.assert_audited("device_refused")

    async def test_revoked_device(self):
        await self.gw.stop()
        self.gw.cli("device", "revoke", "TAB-NUKUTA-2")
        self.gw.exit_checked = False
        await self.gw.start()
        await self.assert_refused_at_tls(self.gw.device_files("TAB-NUKUTA-2"),
                                         allow_codes=("device_revoked",
                                                      "device_certificate_invalid"))
        # other devices are unaffected
        ok = await self.device("TAB-NUKUTA-1")
        self.assertEqual(ok.hello.get("role"), "tablet")

    async def assert_refused_at_tls(self, cert_files, allow_codes=("device_certificate_invalid",)):
        """The handshake (or, at the latest, the first message) must refuse
        the certificate: no hello ever."""
        try:
            c = await self.gw.connect_device("rogue", cert_files=cert_files, expect_hello=False)
        except (ssl.SSLError, OSError, websockets.InvalidHandshake, asyncio.TimeoutError,
                EOFError):
            await self.assert_alive()
            return
        self.clients.append(c)
        await c.expect_closed()
        # closed straight away, or after an error naming the reason
        if c.log:
            first = c.log[0]
            self.assertEqual(first.get("type"), "error", c.transcript())
            self.assertIn(first.get("code"), allow_codes, c.transcript())
        self.assertNotIn("hello", [m.get("type") for m in c.log], c.transcript())
        await self.assert_alive()


class RuleRefusals(GatewayTestCase):
    """tests/integration/data/registry-rules.json: periods that do not depend
    on today's date, and a designated procedure awaiting the upgrade."""

    registry = TEST_DATA / "registry-rules.json"
    devices = RULES_DEVICES

    async def test_designation_expired(self):
        tablet = await self.device("TAB-OLD-1")
        await tablet.send({"type": "request", "procedure": "mynumber.new", "id": "r"})
        await tablet.expect_error("designation_expired", re="r")
        await self.assert_audited("designation_expired", post_office="PO-TEST-OLD")

    async def test_designation_not_yet_valid(self):
        tablet = await self.device("TAB-FUTURE-1")
        await tablet.send({"type": "request", "procedure": "mynumber.new", "id": "r"})
        await tablet.expect_error("designation_not_yet_valid", re="r")
        await self.assert_audited("designation_not_yet_valid", post_office="PO-TEST-FUTURE")

    async def test_procedure_awaiting_upgrade_until_enabled(self):
        tablet = await self.device("TAB-NUKUTA-1")
        procs = {p.get("id"): p for p in tablet.hello.get("procedures", [])}
        self.assertIn("mynumber.renewal", procs, tablet.hello)
        self.assertIs(procs["mynumber.renewal"].get("available"), False, tablet.hello)
        self.assertIs(procs["mynumber.new"].get("available"), True, tablet.hello)
        await tablet.send({"type": "request", "procedure": "mynumber.renewal", "id": "r"})
        await tablet.expect_error("procedure_awaiting_upgrade", re="r")
        await self.assert_audited("procedure_awaiting_upgrade", post_office="PO-NUKUTA")

        # Q&A Q2: the operator enables it once the terminal is upgraded
        self.gw.cli("registry", "enable", "mynumber.renewal")
        await self.assert_audited("mynumber.renewal")
        fresh = await self.device("TAB-NUKUTA-2")
        procs = {p.get("id"): p for p in fresh.hello.get("procedures", [])}
        self.assertIs(procs["mynumber.renewal"].get("available"), True, fresh.hello)
        queued = await self.request(fresh, "mynumber.renewal", id_="r2")
        self.assertEqual(queued.get("procedure"), "mynumber.renewal")


if __name__ == "__main__":
    harness.main()
