#!/usr/bin/python3
"""Keys and what they bind (issue #11, items 6, 10, 11 and 13;
docs/internals/security.md):

- a tablet certificate is bound to its registration: a CA-signed certificate
  with the right CN/OU but another serial is refused (item 6);
- TOTP secrets, outcome notes and evidence file names are sealed in the
  database with a key derived from the evidence master key, and plaintext rows
  of an older database are sealed at start (item 10);
- the audit signing key is never silently regenerated, a pinned public key is
  what verification trusts, and a checkpoint kept elsewhere detects a cut tail
  or a re-signed history (item 11);
- a missing CRL fails closed (item 13).

The sealed-field format is re-implemented from its documentation with the
`cryptography` package (harness.open_sealed), independently of
core/md_sealed.c."""

import hashlib
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402

import harness  # noqa: E402
from harness import GatewayTestCase  # noqa: E402

open_sealed = harness.open_sealed


def entry_hash(prev, entry):
    canon = {k: entry.get(k) for k in ("actor", "detail", "event", "municipality",
                                       "post_office", "seq", "session", "ts")}
    text = json.dumps(canon, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev + "\n" + text).encode()).hexdigest()


class DeviceBinding(GatewayTestCase):
    def forge(self, serial):
        """A certificate for TAB-NUKUTA-1 at PO-NUKUTA, signed by the real CA."""
        key, csr, crt, ext = (self.tmp / n for n in ("f.key", "f.csr", "f.crt", "f.ext"))
        ext.write_text("extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n")
        subprocess.run(
            ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-subj", "/O=madoguchi-device/OU=PO-NUKUTA/CN=TAB-NUKUTA-1",
             "-keyout", str(key), "-out", str(csr)], check=True, capture_output=True)
        certs = self.gw.dir / "certs"
        subprocess.run(
            ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(certs / "ca.crt"),
             "-CAkey", str(certs / "ca.key"), "-set_serial", serial, "-days", "2",
             "-sha256", "-extfile", str(ext), "-out", str(crt)], check=True, capture_output=True)
        return str(crt), str(key)

    async def test_ca_signed_certificate_with_another_serial_is_refused(self):
        forged = self.forge("0x1234567890ABCDEF")
        c = await self.gw.connect_device("forged", cert_files=forged, expect_hello=False)
        self.clients.append(c)
        await c.expect_error("device_certificate_unregistered")
        await c.expect_closed()
        self.assertNotIn("hello", [m.get("type") for m in c.log], c.transcript())
        await self.assert_audited("device_certificate_unregistered", post_office="PO-NUKUTA")
        # the registered certificate of the same device still gets in
        ok = await self.device("TAB-NUKUTA-1")
        self.assertEqual(ok.hello.get("device"), "TAB-NUKUTA-1")

    async def test_registration_stores_serial_and_fingerprint(self):
        row = self.gw.sqlite("SELECT cert_serial, cert_sha256 FROM device "
                             "WHERE id = 'TAB-NUKUTA-1';").strip().split("|")
        crt = self.gw.device_files("TAB-NUKUTA-1")[0]
        out = subprocess.run(["openssl", "x509", "-in", crt, "-noout", "-serial",
                              "-fingerprint", "-sha256"],
                             check=True, capture_output=True, text=True).stdout
        serial = out.split("serial=")[1].split()[0].upper()
        fp = out.split("Fingerprint=")[1].split()[0].replace(":", "").lower()
        self.assertEqual(row, [serial, fp], out)


class MissingCrl(GatewayTestCase):
    # The CA key is kept off the host: the gateway cannot rewrite the CRL.
    config = {"tls": {"ca_key": "/nonexistent/ca.key"}}
    start_gateway = False

    async def test_missing_crl_refuses_devices(self):
        crl = self.gw.dir / "certs" / "ca.crl"
        crl.unlink()
        await self.gw.start()
        self.assertIn("crl_missing", self.gw.log_text())
        try:
            c = await self.gw.connect_device("TAB-NUKUTA-1", expect_hello=False)
        except Exception:  # noqa: BLE001 - refused in the handshake: what we want
            c = None
        if c is not None:
            self.clients.append(c)
            await c.expect_closed()
            self.assertNotIn("hello", [m.get("type") for m in c.log], c.transcript())
        await self.assert_audited("crl_unavailable")
        # staff are unaffected; a CRL written where the CA key is (`certs crl`
        # with the key's media mounted) and a reload let tablets in
        self.assertEqual(await self.gw.healthz(), 200)
        self.gw.extra_config = {"tls": {"ca_key": str(self.gw.dir / "certs" / "ca.key")}}
        self.gw.write_config()
        self.gw.cli("certs", "crl")
        self.assertTrue(crl.exists())
        self.gw.proc.send_signal(harness.signal.SIGHUP)
        for _ in range(50):
            try:
                ok = await self.device("TAB-NUKUTA-1")
                break
            except Exception:  # noqa: BLE001 - the reload may not have happened yet
                await harness.asyncio.sleep(0.1)
        else:
            self.fail("tablet still refused after the CRL came back\n" + self.gw.log_tail())
        self.assertEqual(ok.hello.get("device"), "TAB-NUKUTA-1")


class SealedSecrets(GatewayTestCase):
    async def test_totp_secret_is_sealed(self):
        stored = self.gw.sqlite("SELECT totp_secret FROM staff WHERE username = 'v-yasuoka';")
        stored = stored.strip()
        secret = self.gw.secrets["v-yasuoka"]
        self.assertNotIn(secret, stored)
        self.assertEqual(open_sealed(self.gw.dir, "staff.totp_secret:v-yasuoka", stored), secret)
        await self.gw.login_ok("v-yasuoka")

    async def test_outcome_note_is_sealed(self):
        verifier = await self.staff("v-yasuoka")
        tablet = await self.device("TAB-NUKUTA-1")
        session = (await self.request(tablet))["session"]
        await verifier.send({"type": "accept", "session": session})
        await verifier.expect("assigned", session=session)
        note = "申請者の本人確認書類が不鮮明"
        await verifier.send({"type": "outcome", "session": session, "result": "aborted",
                             "reason": note})
        await verifier.expect("ended", session=session)
        await self.gw.stop()
        stored = self.gw.sqlite("SELECT outcome_note FROM verification_session "
                                "WHERE id = '%s';" % session).strip()
        self.assertNotIn(note, stored)
        self.assertEqual(open_sealed(self.gw.dir, "verification_session.outcome_note:" + session,
                                     stored), note)

    async def test_plaintext_rows_are_sealed_at_start(self):
        await self.gw.stop()
        secret = self.gw.secrets["v-yasuoka"]
        # A recent session: one older than its municipality's retention_days
        # would be purged by serve's retention run at start (file names blanked).
        now_ms = int(time.time() * 1000)
        self.gw.sqlite(
            "UPDATE staff SET totp_secret = '%s' WHERE username = 'v-yasuoka';"
            "INSERT INTO verification_session (id, municipality, post_office, device, procedure,"
            " state, outcome_note, requested_at) VALUES ('old-1', '204111', 'PO-NUKUTA',"
            " 'TAB-NUKUTA-1', 'mynumber.new', 'ended', 'plain note', %d);"
            "INSERT INTO evidence (session_id, file_id, leg, kind, name, mime, size, sha256,"
            " created_at) VALUES ('old-1', 'f1', 'tablet', 'file', 'Ausweis.png', 'image/png',"
            " 1, '%s', %d);" % (secret, now_ms, "0" * 64, now_ms))
        self.gw.exit_checked = False
        await self.gw.start()
        row = self.gw.sqlite("SELECT s.totp_secret, v.outcome_note, e.name FROM staff s,"
                             " verification_session v, evidence e WHERE s.username = 'v-yasuoka'"
                             " AND v.id = 'old-1' AND e.session_id = 'old-1';").strip().split("|")
        self.assertEqual(open_sealed(self.gw.dir, "staff.totp_secret:v-yasuoka", row[0]), secret)
        self.assertEqual(open_sealed(self.gw.dir, "verification_session.outcome_note:old-1",
                                     row[1]), "plain note")
        self.assertEqual(open_sealed(self.gw.dir, "evidence.name:old-1/f1", row[2]),
                         "Ausweis.png")
        self.assertIn("sealed_migrated", self.gw.log_text())
        await self.gw.login_ok("v-yasuoka")


class AuditAnchor(GatewayTestCase):
    start_gateway = False

    def cli(self, *args):
        r = self.gw.cli(*args, check=False)
        return r.returncode, r.stdout + r.stderr

    async def session_then_stop(self):
        await self.gw.start()
        tablet = await self.device("TAB-NUKUTA-1")
        await self.request(tablet)
        await tablet.close()
        await self.gw.stop()

    async def test_missing_signing_key_refuses_start(self):
        key = self.gw.dir / "audit.key"
        self.assertTrue(key.exists())
        key.unlink()
        with self.assertRaises(harness.ServerError):
            await self.gw.start()
        self.gw.exit_checked = True
        self.assertIn("audit_signing_key_missing", self.gw.log_text())
        self.assertFalse(key.exists(), "the signing key must not be regenerated")

    async def test_checkpoint_detects_cut_tail_and_resigned_history(self):
        await self.session_then_stop()
        r = self.gw.cli("audit", "checkpoint")
        out = r.stdout
        cp = json.loads(out)
        for k in ("seq", "hash", "key_id", "signature", "ts"):
            self.assertIn(k, cp, cp)
        anchor = self.tmp / "anchor.json"
        anchor.write_text(out)
        rc, out = self.cli("audit", "verify", "--checkpoint", anchor)
        self.assertEqual(rc, 0, out)

        saved = self.tmp / "saved.db"
        saved.write_bytes(Path(self.gw.database).read_bytes())

        # A cut tail: the newest entries and their checkpoints removed, an
        # older checkpoint left.  The log alone still verifies.
        older = int(self.gw.sqlite("SELECT max(seq) FROM audit_checkpoint WHERE seq < %d;"
                                   % cp["seq"]).strip() or 0)
        self.assertGreater(older, 0)
        self.gw.sqlite("DELETE FROM audit_checkpoint WHERE seq > %d; DELETE FROM audit WHERE"
                       " seq > %d;" % (older, older))
        rc, out = self.cli("audit", "verify")
        self.assertEqual(rc, 0, "a clean cut passes the plain check:\n" + out)
        rc, out = self.cli("audit", "verify", "--checkpoint", anchor)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("seq %d" % cp["seq"], out)

        # A re-signed history: entry 2 rewritten, every hash recomputed and
        # every checkpoint signed again with the (stolen) signing key.
        Path(self.gw.database).write_bytes(saved.read_bytes())
        key = serialization.load_pem_private_key((self.gw.dir / "audit.key").read_bytes(), None)
        prev = "0" * 64
        checkpoints = {int(s) for s in
                       self.gw.sqlite("SELECT seq FROM audit_checkpoint;").split()}
        sql = []
        with sqlite3.connect(self.gw.database) as db:
            rows = db.execute("SELECT seq, ts, actor, event, municipality, post_office, session,"
                              " detail FROM audit ORDER BY seq").fetchall()
        names = ("seq", "ts", "actor", "event", "municipality", "post_office", "session")
        for row in rows:
            e = dict(zip(names, row[:7]), detail=json.loads(row[7]))
            if e["seq"] == 2:
                e["actor"] = "operator:forged"
            h = entry_hash(prev, e)
            sql.append("UPDATE audit SET actor='%s', prev_hash='%s', hash='%s' WHERE seq=%d;"
                       % (e["actor"], prev, h, e["seq"]))
            if e["seq"] in checkpoints:
                sig = key.sign(("madoguchi-audit-checkpoint\n%d\n%s" % (e["seq"], h)).encode())
                sql.append("UPDATE audit_checkpoint SET hash='%s', signature='%s' WHERE seq=%d;"
                           % (h, sig.hex(), e["seq"]))
            prev = h
        self.gw.sqlite("".join(sql))
        rc, out = self.cli("audit", "verify")
        self.assertEqual(rc, 0, "with the key, a re-signed log passes the plain check:\n" + out)
        rc, out = self.cli("audit", "verify", "--checkpoint", anchor)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("seq %d" % cp["seq"], out)

    async def test_pinned_public_key(self):
        # A key of someone else's, pinned: verification trusts only it.
        other = ed25519.Ed25519PrivateKey.generate().public_key()
        other_pem = self.tmp / "other.pub"
        other_pem.write_bytes(other.public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo))
        rc, out = self.cli("audit", "verify", "--pubkey", other_pem)
        self.assertNotEqual(rc, 0, out)
        rc, out = self.cli("audit", "verify", "--pubkey", self.gw.dir / "audit.key.pub")
        self.assertEqual(rc, 0, out)

        # The gateway refuses to sign with a key that is not the pinned one.
        self.gw.extra_config = {"audit": {"public_key": str(other_pem)}}
        with self.assertRaises(harness.ServerError):
            await self.gw.start()
        self.gw.exit_checked = True
        self.assertIn("audit_key_mismatch", self.gw.log_text())

        # Pinned as raw hex in the config, the .pub file beside the log no
        # longer matters: replacing it does not fool /api/audit/verify.
        real = serialization.load_pem_public_key((self.gw.dir / "audit.key.pub").read_bytes())
        raw = real.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        (self.gw.dir / "audit.key.pub").write_bytes(other_pem.read_bytes())
        self.gw.extra_config = {"audit": {"public_key": raw.hex()}}
        self.gw.exit_checked = False
        await self.gw.start()
        cookie = await self.gw.login_ok("a-audit")
        status, body, _ = await self.gw.ahttp("GET", "/api/audit/verify", cookie=cookie)
        self.assertEqual(status, 200, body)
        self.assertIs(body.get("ok"), True, body)
        self.assertIs(body.get("pinned"), True, body)
        self.assertEqual(self.cli("audit", "verify")[0], 0)


if __name__ == "__main__":
    harness.main()
