#!/usr/bin/python3
"""Operator commands of the real binary on a real data directory: registry
import with refusals, user add, device issue (no running server needed), and
the harness's own TOTP against RFC 6238's test vectors."""

import asyncio
import base64
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import SAMPLE_REGISTRY, TEST_DATA, Gateway  # noqa: E402


class Totp(unittest.TestCase):
    def test_rfc6238_appendix_b_sha1(self):
        secret = base64.b32encode(b"12345678901234567890").decode()
        for t, code in ((59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"),
                        (1234567890, "89005924"), (2000000000, "69279037"),
                        (20000000000, "65353130")):
            self.assertEqual(harness.totp(secret, t, digits=8), code, t)


class Cli(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="md-it-cli-"))
        self.gw = Gateway(self.tmp, ports=(0, 0))
        self.gw.write_config()

    def tearDown(self):
        if not os.environ.get("MD_IT_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    def test_certs_init(self):
        self.gw.cli("certs", "init")
        for name in ("ca.crt", "ca.key", "server.crt", "server.key"):
            self.assertTrue((self.tmp / "certs" / name).is_file(), name)
        for name in ("ca.key", "server.key"):
            mode = stat.S_IMODE((self.tmp / "certs" / name).stat().st_mode)
            self.assertEqual(mode & 0o077, 0, "%s is private (mode %o)" % (name, mode))
        text = subprocess.run(["openssl", "x509", "-noout", "-text", "-in",
                               str(self.tmp / "certs" / "server.crt")],
                              capture_output=True, text=True, check=True).stdout
        for san in ("DNS:localhost", "IP Address:127.0.0.1"):
            self.assertIn(san, text)
        r = subprocess.run(["openssl", "verify", "-CAfile", self.gw.ca,
                            str(self.tmp / "certs" / "server.crt")], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_registry_import_sample(self):
        self.gw.cli("certs", "init")
        r = self.gw.cli("registry", "import", SAMPLE_REGISTRY, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        listing = self.gw.cli("registry", "list").stdout
        for word in ("204111", "PO-NUKUTA", "PO-SAMPLE-KANI", "PO-MIYAKONOJO-AEON", "mynumber.new"):
            self.assertIn(word, listing)
        # importing again changes nothing and refuses nothing
        r = self.gw.cli("registry", "import", SAMPLE_REGISTRY, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_registry_import_refuses_bad_entries_and_keeps_good_ones(self):
        self.gw.cli("certs", "init")
        r = self.gw.cli("registry", "import", TEST_DATA / "registry-refused.json", check=False)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"refused .*PO-SAMPLE-KANI.*post_office_simplified", r.stdout)
        self.assertRegex(r.stdout, r"refused .*204112.*municipality_code_invalid", r.stdout)
        listing = self.gw.cli("registry", "list").stdout
        self.assertIn("PO-NUKUTA", listing)
        export = self.gw.audit_export()
        self.assertTrue(harness.find_audit(export, "post_office_simplified"),
                        harness.describe_entries(export))

    def test_registry_import_rejects_unusable_document(self):
        bad = self.tmp / "bad.json"
        bad.write_text("{ this is not json")
        r = self.gw.cli("registry", "import", bad, check=False)
        self.assertNotIn(r.returncode, (0, 2), r.stdout + r.stderr)

    def test_user_add(self):
        self.gw.cli("certs", "init")
        self.gw.cli("registry", "import", SAMPLE_REGISTRY)
        r = self.gw.cli("user", "add", "v-test", "--role", "verifier", "--municipality",
                        "204111", "--password-stdin", input=harness.PASSWORD + "\n")
        uri = re.search(r"otpauth://\S+", r.stdout).group(0)
        secret = harness.secret_from_otpauth(uri)
        self.assertEqual(len(harness.base32_secret(secret)), 20, "160-bit secret")
        self.assertNotIn(harness.PASSWORD, r.stdout + r.stderr)
        # duplicates, short passwords, verifiers without a known municipality
        for args, stdin in (
            (["v-test", "--role", "verifier", "--municipality", "204111"], harness.PASSWORD),
            (["v-short", "--role", "verifier", "--municipality", "204111"], "short"),
            (["v-nomun", "--role", "verifier"], harness.PASSWORD),
            (["v-badmun", "--role", "verifier", "--municipality", "999999"], harness.PASSWORD),
            (["x-bad", "--role", "emperor"], harness.PASSWORD),
        ):
            r = self.gw.cli("user", "add", *args, "--password-stdin", input=stdin + "\n",
                            check=False)
            self.assertNotEqual(r.returncode, 0, (args, r.stdout, r.stderr))
        db = self.gw.sqlite(".dump")
        self.assertNotIn(harness.PASSWORD, db, "passwords are stored hashed only")

    def test_device_issue(self):
        self.gw.cli("certs", "init")
        self.gw.cli("registry", "import", SAMPLE_REGISTRY)
        out = self.tmp / "out"
        self.gw.cli("device", "issue", "TAB-X-1", "--post-office", "PO-NUKUTA", "--out", out,
                    "--p12-password", "p12secret")
        for ext in ("p12", "crt", "key"):
            self.assertTrue((out / ("TAB-X-1." + ext)).is_file(), ext)
        mode = stat.S_IMODE((out / "TAB-X-1.key").stat().st_mode)
        self.assertEqual(mode & 0o077, 0, "device key is private (mode %o)" % mode)
        subject = subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "RFC2253",
                                  "-in", str(out / "TAB-X-1.crt")],
                                 capture_output=True, text=True, check=True).stdout
        self.assertIn("CN=TAB-X-1", subject)
        self.assertIn("OU=PO-NUKUTA", subject)
        r = subprocess.run(["openssl", "verify", "-CAfile", self.gw.ca, "-purpose", "sslclient",
                            str(out / "TAB-X-1.crt")], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = subprocess.run(["openssl", "pkcs12", "-in", str(out / "TAB-X-1.p12"), "-nokeys",
                            "-passin", "pass:p12secret"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("BEGIN CERTIFICATE", r.stdout)
        # unknown post office
        r = self.gw.cli("device", "issue", "TAB-X-2", "--post-office", "PO-NOWHERE", "--out", out,
                        check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertFalse((out / "TAB-X-2.p12").exists())

    def test_bad_config_is_refused(self):
        self.gw.config_path.write_text(json.dumps({"data_dir": str(self.tmp),
                                                   "limtis": {"max_message_bytes": 4096}}))
        r = self.gw.cli("registry", "list", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("limtis", r.stdout + r.stderr)


class SetupDev(unittest.IsolatedAsyncioTestCase):
    """What scripts/start does after building: setup-dev (twice: it only adds
    what is missing), then serve, and the printed demo credentials work."""

    async def test_setup_dev_then_serve_and_log_in(self):
        asyncio.get_running_loop().slow_callback_duration = 30  # the CLI runs blocking
        tmp = Path(tempfile.mkdtemp(prefix="md-it-dev-"))
        gw = Gateway(tmp)
        gw.write_config()
        try:
            r1 = gw.cli("setup-dev")
            r2 = gw.cli("setup-dev")
            self.assertEqual(r2.returncode, 0, r2.stderr)
            self.assertNotIn("created CA", r2.stdout, "a second run creates nothing")
            creds = (tmp / "demo-credentials.txt").read_text()
            m = re.search(r"^demo-verifier \(.*\n\s*password: (\S+)\n\s*totp: (\S+)", creds,
                          re.M)
            self.assertTrue(m, creds[:200] + r1.stdout)
            password, uri = m.group(1), m.group(2)
            gw.secrets["demo-verifier"] = harness.secret_from_otpauth(uri)
            await gw.start()
            status, body, cookie = await gw.login("demo-verifier", password=password,
                                                  code=await gw.next_totp("demo-verifier"))
            self.assertEqual(status, 200, body)
            self.assertEqual(body.get("municipality"), "204111")
            tablet = await gw.connect_device("TAB-NUKUTA-1")
            self.assertEqual(tablet.hello.get("post_office"), "PO-NUKUTA")
            await tablet.close()
            status, page, _ = await gw.ahttp("GET", "/")
            self.assertEqual(status, 200)
            await gw.stop()
        finally:
            gw.kill()
            if not os.environ.get("MD_IT_KEEP"):
                shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    harness.main()
