#!/usr/bin/python3
"""Twenty sessions at once through the real daemon (DESIGN.md section 8):
20 tablets and 20 verifiers (real aiortc peers, audio + low-resolution video)
all take their sessions live and receive each other's media; after every
session has ended and every client has gone, the daemon's open file
descriptors and threads are back at their baseline (no leaked sockets,
agents or worker threads).  Resource counts are read from /proc; nothing
here measures time.
"""

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from webrtc import LIVE_TIMEOUT, Leg, LiveBase  # noqa: E402  (also narrows ICE to loopback)

from aiortc.mediastreams import VideoStreamTrack  # noqa: E402

import harness  # noqa: E402

SESSIONS = 20


class SmallVideo(VideoStreamTrack):
    """160x120 frames: twenty sessions must fit on a 2-core machine."""

    async def recv(self):
        frame = await super().recv()
        return frame.reformat(width=160, height=120)


class SmallLeg(Leg):
    def __init__(self, client, session):
        super().__init__(client, session)
        for t in self.pc.getTransceivers():
            if t.kind == "video":
                t.sender.replaceTrack(SmallVideo())


def resources(pid):
    return (len(os.listdir("/proc/%d/fd" % pid)), len(os.listdir("/proc/%d/task" % pid)))


class Concurrency(LiveBase):
    users = dict({"v-c%02d" % i: ("verifier", "204111") for i in range(SESSIONS)},
                 **{"a-audit": ("auditor", None)})
    devices = {"TAB-C%02d" % i: "PO-NUKUTA" for i in range(SESSIONS)}
    # Twenty verifiers log in at once from one address: the login throttle
    # and the hashing queue are sized for a real office, not for this.
    config = {"auth": {"login_queue": 2 * SESSIONS, "login_per_source_per_minute": 4 * SESSIONS}}

    async def one_session(self, i):
        verifier = await self.staff("v-c%02d" % i)
        tablet = await self.device("TAB-C%02d" % i)
        await tablet.send({"type": "request", "procedure": "mynumber.new", "id": "r%d" % i})
        session = (await tablet.expect("queued", re="r%d" % i))["session"]
        await verifier.send({"type": "accept", "session": session, "id": "a%d" % i})
        await verifier.expect("assigned", session=session, timeout=LIVE_TIMEOUT)
        await tablet.expect("assigned", session=session, timeout=LIVE_TIMEOUT)
        t, v = SmallLeg(tablet, session), SmallLeg(verifier, session)
        self.legs += [t, v]
        await asyncio.gather(t.offer(), v.offer())
        await asyncio.gather(t.apply_answer(), v.apply_answer())
        for leg in (t, v):
            await leg.client.expect("state", session=session, state="live",
                                    timeout=LIVE_TIMEOUT)
        # each side decodes video from the other
        for leg in (t, v):
            track = None
            while track is None or track.kind != "video":
                track = await asyncio.wait_for(leg.tracks.get(), LIVE_TIMEOUT)
            frame = await asyncio.wait_for(track.recv(), LIVE_TIMEOUT)
            self.assertEqual((frame.width, frame.height), (160, 120))
        return session, t, v

    async def settle(self, pid, baseline, seconds=20):
        """Resources once the daemon has closed everything (polls /proc)."""
        now = resources(pid)
        for _ in range(int(seconds * 10)):
            if now == baseline:
                break
            await asyncio.sleep(0.1)
            now = resources(pid)
        return now

    async def test_twenty_sessions_flow_and_resources_return(self):
        pid = self.gw.proc.pid
        # One session first, so that anything created once on first use
        # (thread pools, the SRTP library) is part of the baseline.
        session, t, v = await self.one_session(0)
        await t.client.send({"type": "hangup", "session": session})
        await v.client.expect("ended", session=session)
        for leg in (t, v):
            await leg.close()
        for c in list(self.clients):
            await c.close()
        self.clients.clear()
        self.legs.clear()
        await asyncio.sleep(1)
        baseline = resources(pid)

        results = await asyncio.gather(*(self.one_session(i) for i in range(SESSIONS)))
        during = resources(pid)
        self.assertGreater(during[0], baseline[0], "sessions hold sockets")
        for session, t, v in results:
            await self.media_seen(session, v)
            await v.client.send({"type": "outcome", "session": session, "result": "verified"})
        for session, t, v in results:
            for leg in (t, v):
                e = await leg.client.expect("ended", session=session, timeout=LIVE_TIMEOUT)
                self.assertEqual(e.get("outcome"), "verified")
        for leg in self.legs:
            await leg.close()
        for c in list(self.clients):
            await c.close()
        self.clients.clear()
        self.legs.clear()

        after = await self.settle(pid, baseline)
        sys.stderr.write("daemon fds/threads: baseline %s, with %d sessions %s, after %s\n"
                         % (baseline, SESSIONS, during, after))
        self.assertEqual(after, baseline)
        await self.assert_alive()


if __name__ == "__main__":
    harness.main()
