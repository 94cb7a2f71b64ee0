#!/usr/bin/python3
"""Admission of a session's media (docs/internals/media.md, "Admission";
docs/protocol.md, `media_capacity`), through the real daemon:

- when no media worker may take one more session, `accept` is refused with
  `media_capacity` and its `re`; nothing else changes: the request keeps its
  place in the queue, its tablet hears nothing, the session already assigned
  goes on, and the refusal is audited; once there is room the same accept
  succeeds;
- `media.max_sessions` is such a limit too, freed when a session ends;
- with random assignment the gateway itself tries again each second, so the
  request is assigned without anyone acting.

The set-up window (`media.admit_settling` 1) stands in for a busy worker: the decision itself, with CPU load, is
tests/media/test_admit.c."""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import TEST_DATA, GatewayTestCase  # noqa: E402

SETTLE_S = 3  # MD_ADMIT_SETTLE_MS


def has_entry(session):
    return lambda m: any(e.get("session") == session for e in m.get("entries", []))


class Admission(GatewayTestCase):
    async def one_assigned(self):
        """Two verifiers and two tablets; the first session accepted and
        assigned. Returns (v1, v2, t1, t2, s1)."""
        v1 = await self.staff("v-yasuoka")
        v2 = await self.staff("v-yasuoka2")
        t1 = await self.device("TAB-NUKUTA-1")
        t2 = await self.device("TAB-NUKUTA-2")
        s1 = (await self.request(t1))["session"]
        await v1.send({"type": "accept", "session": s1})
        await v1.expect("assigned", session=s1)
        return v1, v2, t1, t2, s1


class SetupWindow(Admission):
    config = {"media": {"admit_settling": 1}}

    async def test_refused_accept_leaves_everything_as_it_was(self):
        v1, v2, t1, t2, s1 = await self.one_assigned()
        opened = time.monotonic()
        s2 = (await self.request(t2, id_="req-2"))["session"]
        for v in (v1, v2):
            await v.expect("queue", pred=has_entry(s2))
            v.inbox[:] = [m for m in v.inbox if m.get("type") != "queue"]  # seen up to here

        # s1 is still settling: s2's accept is refused, and says why
        await v2.send({"type": "accept", "session": s2, "id": "a-1"})
        err = await v2.expect_error("media_capacity", re="a-1")
        self.assertLess(time.monotonic() - opened, SETTLE_S, "refused inside the window")
        self.assertEqual(err.get("session"), s2, err)
        self.assertTrue(err.get("message"), err)
        await t2.expect_none("assigned", 0.3)
        await t2.expect_none("ended", 0)
        # the request is still waiting: no queue without it went out
        await v2.expect_none("queue", 0, pred=lambda m: not has_entry(s2)(m))
        await v1.expect_none("queue", 0, pred=lambda m: not has_entry(s2)(m))
        await t1.expect_none("ended", 0)  # s1 goes on
        await self.assert_audited("media_capacity", session=s2)

        # once s1 has settled there is room: the same accept succeeds
        deadline = opened + SETTLE_S + 5
        while True:
            await v2.send({"type": "accept", "session": s2, "id": "a-2"})
            m = await v2.expect(None, pred=lambda m: m.get("type") in ("assigned", "error"),
                                re="a-2")
            if m["type"] == "assigned":
                break
            self.assertEqual(m.get("code"), "media_capacity", m)
            self.assertLess(time.monotonic(), deadline, "still refused after the window")
            await v2.expect_none("assigned", 0.5, re="a-2")
        self.assertGreaterEqual(time.monotonic() - opened, SETTLE_S - 0.1)
        await t2.expect("assigned", session=s2, role="tablet")
        for v, s in ((v1, s1), (v2, s2)):
            await v.send({"type": "outcome", "session": s, "result": "not_verified"})
            await v.expect("ended", session=s)


class MaxSessions(Admission):
    config = {"media": {"max_sessions": 1}}

    async def test_room_comes_back_when_a_session_ends(self):
        v1, v2, _, t2, s1 = await self.one_assigned()
        s2 = (await self.request(t2, id_="req-2"))["session"]
        await v2.send({"type": "accept", "session": s2, "id": "b"})
        await v2.expect_error("media_capacity", re="b")
        await v1.send({"type": "outcome", "session": s1, "result": "not_verified"})
        await v1.expect("ended", session=s1)
        await v2.send({"type": "accept", "session": s2, "id": "c"})
        await v2.expect("assigned", session=s2, re="c")
        await t2.expect("assigned", session=s2)


class RandomAssignment(GatewayTestCase):
    registry = TEST_DATA / "registry-random.json"
    config = {"media": {"admit_settling": 1}}

    async def test_gateway_assigns_once_there_is_room(self):
        v1 = await self.staff("v-yasuoka")
        v2 = await self.staff("v-yasuoka2")
        await v1.expect("queue")
        await v2.expect("queue")
        t1 = await self.device("TAB-NUKUTA-1")
        t2 = await self.device("TAB-NUKUTA-2")
        await t1.send({"type": "request", "procedure": "mynumber.new"})
        s1 = (await t1.expect("assigned"))["session"]
        opened = time.monotonic()
        s2 = (await self.request(t2, id_="req-2"))["session"]
        # one verifier is idle, but the worker is still setting s1 up
        await t2.expect_none("assigned", 1.0)
        a = await t2.expect("assigned", session=s2, timeout=SETTLE_S + 5)
        self.assertEqual(a.get("role"), "tablet")
        self.assertGreaterEqual(time.monotonic() - opened, SETTLE_S - 0.1)
        busy = v1 if any(m.get("type") == "assigned" and m.get("session") == s1
                         for m in v1.log) else v2
        await (v2 if busy is v1 else v1).expect("assigned", session=s2)


if __name__ == "__main__":
    harness.main()
