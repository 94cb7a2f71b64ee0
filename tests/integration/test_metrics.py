#!/usr/bin/python3
"""Operations (issue #10 item 5): `GET /metrics` on its own listener, scraped
during a live session with a second request waiting, shows the session, the
queue and relayed packets; the staff listener does not serve it; the systemd
unit in dist/ passes `systemd-analyze verify` with no complaint."""

import asyncio
import http.client
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from webrtc import LIVE_TIMEOUT, LiveBase  # noqa: E402


def scrape(port):
    conn = http.client.HTTPConnection(harness.HOST, port, timeout=harness.REPLY_TIMEOUT)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read().decode()
    finally:
        conn.close()


def sample(text, name, **labels):
    """The value of one sample, or None."""
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        m = re.fullmatch(r"([a-z_]+)(?:\{([^}]*)\})? (\S+)", line)
        if m and m.group(1) == name:
            have = ",".join(sorted((m.group(2) or "").split(","))) if m.group(2) else ""
            if have == want:
                return float(m.group(3))
    return None


class Metrics(LiveBase):
    async def asyncSetUp(self):
        self.metrics_port = harness.free_ports(1)[0]
        self.config = {"metrics": {"address": harness.HOST, "port": self.metrics_port}}
        await super().asyncSetUp()

    async def test_scrape_during_live_session(self):
        session, t, v = await self.go_live()
        waiting = await self.device("TAB-NUKUTA-2")
        await self.request(waiting, id_="waits")
        # a quality report means the media plane has counted packets
        await v.client.expect("quality", session=session, timeout=LIVE_TIMEOUT,
                              pred=lambda m: m.get("stats", {}).get("counters", {}).get("packets_in"))
        status, ctype, text = await asyncio.to_thread(scrape, self.metrics_port)
        self.assertEqual(status, 200, text)
        self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
        self.assertEqual(sample(text, "madoguchi_sessions", state="live"), 1, text)
        self.assertEqual(sample(text, "madoguchi_sessions", state="requested"), 1, text)
        self.assertEqual(sample(text, "madoguchi_queue_length", municipality="204111"), 1, text)
        self.assertGreaterEqual(
            sample(text, "madoguchi_queue_longest_wait_seconds", municipality="204111"), 0, text)
        self.assertGreater(sample(text, "madoguchi_relayed_packets_total", direction="in"), 0, text)
        self.assertGreater(sample(text, "madoguchi_relayed_packets_total", direction="out"), 0, text)
        self.assertGreater(sample(text, "madoguchi_relayed_bytes_total", direction="in"), 0, text)
        self.assertGreater(sample(text, "madoguchi_logins_total"), 0, text)
        self.assertGreater(sample(text, "madoguchi_audit_append_seconds_count"), 0, text)
        self.assertIsNotNone(sample(text, "madoguchi_media_failures_total", code="ice_failed"), text)
        self.assertIsNotNone(sample(text, "madoguchi_evidence_store_bytes"), text)
        # each worker's load is a share of one core; nothing was refused
        load = sample(text, "madoguchi_media_worker_load", worker="0")
        self.assertTrue(load is not None and 0 <= load <= 1, text)
        load = sample(text, "madoguchi_process_cpu_load")
        self.assertTrue(load is not None and 0 <= load <= 1, text)
        self.assertEqual(sample(text, "madoguchi_media_admission_refused_total"), 0, text)
        # every line is a comment or a sample (exposition format 0.0.4)
        for line in text.splitlines():
            self.assertRegex(line, r"^(# (HELP|TYPE) .+|[a-z_]+(\{[^}]*\})? [0-9.e+-]+)$")
        # not on the public staff port
        status, _, _ = await self.gw.ahttp("GET", "/metrics")
        self.assertEqual(status, 404)
        # a wrong path on the metrics listener
        conn = http.client.HTTPConnection(harness.HOST, self.metrics_port, timeout=5)
        conn.request("GET", "/")
        self.assertEqual(conn.getresponse().status, 404)
        conn.close()


class SystemdUnit(harness.unittest.TestCase):
    def test_unit_verifies(self):
        tool = shutil.which("systemd-analyze")
        if not tool:
            self.skipTest("systemd-analyze is not installed")
        unit = (harness.SOURCE_ROOT / "dist" / "madoguchi.service").read_text()
        for directive in ("User=madoguchi", "ProtectSystem=strict", "NoNewPrivileges=true",
                          "PrivateTmp=true", "StateDirectory=madoguchi",
                          "ExecReload=/bin/kill -HUP $MAINPID"):
            self.assertIn(directive, unit.splitlines())
        # verify checks that ExecStart exists: point it at the built binary
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "madoguchi.service"
            path.write_text(unit.replace("/usr/local/bin/madoguchi", harness.madoguchi_binary()))
            r = subprocess.run([tool, "verify", str(path)], capture_output=True, text=True,
                               timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        complaints = [x for x in (r.stdout + r.stderr).splitlines() if "madoguchi.service" in x]
        self.assertEqual(complaints, [], r.stdout + r.stderr)


if __name__ == "__main__":
    harness.main()
