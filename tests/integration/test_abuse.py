#!/usr/bin/python3
"""Hostile or broken clients: malformed JSON, unknown types, oversized
frames, floods.  Each gets its error code (docs/protocol.md, "Limits"), and a
second connection that was already open keeps working: its request still
reaches the verifier's queue, and the daemon stays healthy."""

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import websockets  # noqa: E402

import harness  # noqa: E402
from harness import GatewayTestCase  # noqa: E402


def has_entry(session):
    return lambda m: any(e.get("session") == session for e in m.get("entries", []))


class Abuse(GatewayTestCase):
    config = {"limits": {"max_message_bytes": 65536, "messages_per_second": 20,
                         "message_burst": 40, "flood_close_after": 50}}

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.verifier = await self.staff("v-yasuoka")
        await self.verifier.expect("queue")
        self.good = await self.device("TAB-NUKUTA-1", name="good tablet")
        self.bad = await self.device("TAB-NUKUTA-2", name="bad tablet")

    async def assert_others_unaffected(self, round_=1):
        """The good tablet's request flows to the verifier, and is withdrawn
        again so that the check can be repeated."""
        await self.good.send({"type": "request", "procedure": "mynumber.new",
                              "id": "good-%d" % round_})
        session = (await self.good.expect("queued"))["session"]
        await self.verifier.expect("queue", pred=has_entry(session))
        await self.good.send({"type": "cancel", "session": session})
        await self.good.expect("ended", session=session)
        await self.assert_alive()

    async def test_bad_json(self):
        for raw in ("{not json", "[1, 2, 3]", '"a string"', "", "\xff\xfe", '{"type":"request",'):
            await self.bad.send(raw)
            err = await self.bad.expect("error")
            self.assertEqual(err.get("code"), "bad_json", (raw, err))
        self.assertTrue(self.bad.is_open(), "a refused message does not close the connection")
        await self.assert_others_unaffected()
        # and the bad tablet itself may still behave
        await self.bad.send({"type": "request", "procedure": "mynumber.new"})
        await self.bad.expect("queued")

    async def test_bad_json_on_staff_connection(self):
        await self.verifier.send("{{{")
        await self.verifier.expect_error("bad_json")
        await self.assert_others_unaffected()

    async def test_unknown_type(self):
        await self.bad.send({"type": "teleport", "id": "t1"})
        await self.bad.expect_error("unknown_type", re="t1")
        await self.bad.send({"procedure": "mynumber.new", "id": "t2"})  # no type at all
        await self.bad.expect_error("unknown_type", re="t2")
        await self.bad.send({"type": 7, "id": "t3"})
        err = await self.bad.expect("error", re="t3")
        self.assertIn(err.get("code"), ("unknown_type", "schema_invalid"), err)
        self.assertTrue(self.bad.is_open())
        await self.assert_others_unaffected()

    async def test_schema_invalid(self):
        await self.bad.send({"type": "request", "procedure": "mynumber.new", "colour": "red",
                             "id": "s1"})
        await self.bad.expect_error("schema_invalid", re="s1")
        await self.bad.send({"type": "request", "id": "s2"})
        await self.bad.expect_error("schema_invalid", re="s2")
        await self.bad.send({"type": "request", "procedure": 42, "id": "s3"})
        await self.bad.expect_error("schema_invalid", re="s3")
        await self.bad.send({"type": "request", "procedure": "mynumber.new", "id": "x" * 65})
        await self.bad.expect_error("schema_invalid")
        await self.assert_others_unaffected()

    async def test_oversized_message(self):
        big = json.dumps({"type": "request", "procedure": "x" * 70000})
        self.assertGreater(len(big), 65536)
        await self.bad.send(big)
        await self.bad.expect_error("message_too_large")
        code = await self.bad.expect_closed()
        self.assertEqual(code, 1009, self.bad.transcript())
        await self.assert_others_unaffected()

    async def test_oversized_fragmented_message(self):
        # the limit is on the message, not on one frame
        chunks = ['{"type":"request","procedure":"'] + ["y" * 8192] * 10 + ['"}']
        await self.bad.ws.send(iter(chunks))
        await self.bad.expect_error("message_too_large")
        code = await self.bad.expect_closed()
        self.assertEqual(code, 1009, self.bad.transcript())
        await self.assert_others_unaffected()

    async def test_just_under_the_limit_is_not_too_large(self):
        msg = {"type": "request", "procedure": "mynumber.new", "id": "big"}
        pad = 65536 - len(json.dumps(msg)) - len(', "pad": ""') - 16
        msg["pad"] = "p" * pad
        await self.bad.send(msg)
        err = await self.bad.expect("error", re="big")
        self.assertEqual(err.get("code"), "schema_invalid", err)  # unknown field, not too large
        self.assertTrue(self.bad.is_open())

    async def test_message_flood(self):
        # Lock-step: each message waits for its reply (an error: session_unknown
        # within the burst of 40, then rate_limited), so nothing is in flight
        # when the gateway gives up after flood_close_after (50) refusals.
        for i in range(200):
            if self.bad.closed.is_set():
                break
            try:
                await self.bad.send({"type": "cancel", "session": "no-such-session",
                                     "id": "f%d" % i})
            except websockets.ConnectionClosed:
                break
            try:
                await self.bad.expect("error")
            except AssertionError:
                if not self.bad.closed.is_set():
                    raise
        code = await self.bad.expect_closed()
        limited = [m for m in self.bad.log if m.get("code") == "rate_limited"]
        answered = [m for m in self.bad.log if m.get("type") == "error"
                    and m.get("code") != "rate_limited"]
        self.assertGreaterEqual(len(limited), 40, self.bad.transcript())
        self.assertLessEqual(len(limited), 50, "at most flood_close_after refusals")
        self.assertGreaterEqual(len(answered), 38, "the burst (40) is served")
        self.assertEqual(code, 1008, self.bad.transcript())
        await self.assert_others_unaffected()

    async def test_message_blast(self):
        # A client that does not read: 400 messages back to back.
        try:
            for i in range(400):
                if self.bad.closed.is_set():
                    break
                await self.bad.send({"type": "cancel", "session": "no-such-session",
                                     "id": "f%d" % i})
        except websockets.ConnectionClosed:
            pass
        await self.bad.expect_closed()
        await self.assert_others_unaffected()
        # the daemon stays responsive for many rounds
        for round_ in range(2, 5):
            await self.assert_others_unaffected(round_)

    async def test_brief_burst_is_only_throttled(self):
        for i in range(75):  # burst 40 served, ~35 refused: fewer than flood_close_after
            await self.bad.send({"type": "cancel", "session": "no-such-session", "id": "b%d" % i})
        await self.bad.expect_error("rate_limited")
        await self.bad.expect_none("hello", 1.5)  # let the bucket refill
        self.assertTrue(self.bad.is_open(), "under flood_close_after: still open")
        await self.bad.send({"type": "request", "procedure": "mynumber.new", "id": "after"})
        await self.bad.expect("queued")
        await self.assert_others_unaffected()

    async def test_too_many_connections_per_device(self):
        # TAB-NUKUTA-1 already has one connection (self.good); the limit is 2
        second = await self.device("TAB-NUKUTA-1", name="good tablet #2")
        self.assertEqual(second.hello.get("device"), "TAB-NUKUTA-1")
        third = await self.gw.connect_device("TAB-NUKUTA-1", expect_hello=False,
                                             name="good tablet #3")
        self.clients.append(third)
        await third.expect_error("too_many_connections")
        await third.expect_closed()
        await self.assert_others_unaffected()

    async def test_everything_at_once_then_all_still_works(self):
        extra = [await self.device("TAB-NUKUTA-3", name="bad #3")]
        for c in [self.bad] + extra:
            await c.send("{broken")
            await c.send({"type": "nope"})
            await c.send(json.dumps({"type": "request", "procedure": "z" * 70000}))
        for c in [self.bad] + extra:
            await c.expect_error("bad_json")
            await c.expect_error("unknown_type")
            await c.expect_error("message_too_large")
            await c.expect_closed()
        for round_ in range(1, 3):
            await self.assert_others_unaffected(round_)


if __name__ == "__main__":
    harness.main()
