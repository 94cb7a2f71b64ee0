#!/usr/bin/python3
"""Acknowledged only when durable (docs/internals/signaling.md): the writes of
a session's set-up commit without waiting for the disk, a thread of the
gateway makes them durable (an fsync of SQLite's write-ahead log), and the
replies that tell of them wait for that fsync.  A failed fsync stops the
gateway before anyone hears.

slow_sync.c, preloaded into the gateway, delays or refuses the fsyncs of the
log while a control file exists and reports when each one ran; the gateway's
debug log says when it read `accept` and when the `assigned` commit returned
(the `setup` events share CLOCK_MONOTONIC with time.monotonic() here)."""

import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import SLOW, GatewayTestCase  # noqa: E402

DELAY_MS = 400


class AcknowledgedWhenDurable(GatewayTestCase):

    def gateway_env(self):
        lib = os.environ.get("MD_TEST_SLOW_SYNC")
        if not lib:
            self.skipTest("MD_TEST_SLOW_SYNC (the preload library) not set")
        self.control = self.tmp / "sync-control"
        # In a sanitizer build its runtime is then not first in line; a plain
        # build ignores the variable.
        asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                      "verify_asan_link_order=0"]))
        return {"LD_PRELOAD": lib, "MD_TEST_SYNC_CONTROL": str(self.control),
                "ASAN_OPTIONS": asan}

    def syncs(self):
        """(start, end) in seconds of each delayed fsync of the log."""
        log = Path(str(self.control) + ".log")
        if not log.exists():
            return []
        return [tuple(int(x) / 1e6 for x in line.split()) for line in log.read_text().split("\n")
                if line.strip()]

    def setup_event(self, event, session):
        for line in self.gw.log_text().splitlines():
            if '"mod":"setup"' in line:
                o = json.loads(line)
                if o["event"] == event and o["session"] == session:
                    return o["t_us"] / 1e6
        self.fail("no setup event %s for %s in the gateway's log" % (event, session))

    async def test_assigned_waits_for_the_fsync_of_its_commit(self):
        verifier = await self.staff("v-yasuoka")
        tablet = await self.device("TAB-NUKUTA-1")
        session = (await self.request(tablet))["session"]
        self.control.write_text(str(DELAY_MS))
        await verifier.send({"type": "accept", "session": session, "id": "a"})
        assigned = await tablet.expect("assigned", timeout=20 * SLOW)
        told = tablet.received_at(assigned)
        self.control.unlink()
        read = self.setup_event("accept", session)
        committed = self.setup_event("assigned", session)
        # An fsync that began after the gateway read `accept` (the only one
        # it asks for then follows the commit) and ended after the commit
        # and before the tablet heard of it: the reply waited for the disk.
        covering = [s for s in self.syncs() if s[0] >= read and committed <= s[1] <= told]
        self.assertTrue(covering, "no fsync of the log begun after `accept` was read at %.6f "
                        "and ended between the commit at %.6f and the reply at %.6f: %s"
                        % (read, committed, told, self.syncs()))
        await self.assert_audited("assigned")

    async def test_a_failed_fsync_stops_the_gateway_before_anyone_hears(self):
        verifier = await self.staff("v-yasuoka")
        tablet = await self.device("TAB-NUKUTA-1")
        session = (await self.request(tablet))["session"]
        self.control.write_text("fail")
        await verifier.send({"type": "accept", "session": session, "id": "a"})
        await tablet.expect_closed(timeout=20 * SLOW)
        await verifier.expect_closed(timeout=20 * SLOW)
        self.gw.proc.wait(20 * SLOW)
        self.gw.log.close()
        self.gw.exit_checked = True
        self.assertEqual(self.gw.proc.returncode, -signal.SIGABRT, self.gw.log_tail())
        self.assertIn("store_sync_failed", self.gw.log_text())
        self.assertFalse([m for m in tablet.log + verifier.log if m.get("type") == "assigned"],
                         tablet.transcript() + "\n" + verifier.transcript())
        # The next start ends the session it left unfinished, and the chain holds.
        self.control.unlink()
        self.gw.exit_checked = False
        await self.gw.start()
        r = self.gw.cli("audit", "verify")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        state = self.gw.sqlite("SELECT state, reason FROM verification_session WHERE id = '%s'"
                               % session).strip()
        self.assertEqual(state, "ended|gateway_restart")


if __name__ == "__main__":
    harness.main()
