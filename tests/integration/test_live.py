#!/usr/bin/python3
"""A session that goes live: both legs are real WebRTC peers that reach ICE +
DTLS-SRTP through the gateway, which then reports `live` to both
(docs/protocol.md, "Session lifecycle" and "Media")."""

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from webrtc import LIVE_TIMEOUT, LiveBase  # noqa: E402


class Live(LiveBase):
    async def test_both_legs_reach_live(self):
        session, t, v = await self.go_live()
        await v.client.send({"type": "outcome", "session": session, "result": "verified"})
        for leg in (t, v):
            e = await leg.client.expect("ended", session=session)
            self.assertEqual(e.get("outcome"), "verified")
        entries = await self.gw.audit_api(session=session)
        self.assertTrue(harness.find_audit(entries, "live")
                        or harness.find_audit(entries, "connect")
                        or harness.find_audit(entries, "connected"),
                        harness.describe_entries(entries))

    async def test_media_is_relayed_both_ways(self):
        session, t, v = await self.go_live()
        for leg in (t, v):
            kinds = set()
            while kinds != {"audio", "video"}:
                track = await asyncio.wait_for(leg.tracks.get(), LIVE_TIMEOUT)
                kinds.add(track.kind)
                if track.kind == "video":
                    frame = await asyncio.wait_for(track.recv(), LIVE_TIMEOUT)
                    self.assertGreater(frame.width, 0)
        await t.client.send({"type": "hangup", "session": session})
        for leg in (t, v):
            e = await leg.client.expect("ended", session=session)
            self.assertEqual(e.get("reason"), "hangup")

    async def test_offer_without_bundle_is_refused(self):
        session, t, v = await self.assigned_session()
        await t.pc.setLocalDescription(await t.pc.createOffer())
        sdp = "\r\n".join(line for line in t.pc.localDescription.sdp.splitlines()
                          if not line.startswith("a=group:BUNDLE")) + "\r\n"
        await t.client.send({"type": "offer", "session": session, "sdp": sdp, "id": "nb"})
        err = await t.client.expect("error", re="nb")
        self.assertIn(err.get("code"), ("bundle_required", "sdp_unsupported", "media_failed"), err)


if __name__ == "__main__":
    harness.main()
