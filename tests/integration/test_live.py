#!/usr/bin/python3
"""A session that goes live: both legs are real WebRTC peers that reach ICE +
DTLS-SRTP through the gateway, which then reports `live` to both
(docs/protocol.md, "Session lifecycle" and "Media")."""

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from webrtc import LIVE_TIMEOUT, Leg, LiveBase  # noqa: E402


class Live(LiveBase):
    async def test_both_legs_reach_live(self):
        session, t, v = await self.go_live()
        await self.media_seen(session, v)
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



async def first_video_frame(leg):
    track = None
    while track is None or track.kind != "video":
        track = await asyncio.wait_for(leg.tracks.get(), LIVE_TIMEOUT)
    return await asyncio.wait_for(track.recv(), LIVE_TIMEOUT)


class Rejoin(LiveBase):
    """A leg whose PeerConnection goes away (page reload: DTLS close_notify)
    may come back with a new one on the same session within the grace."""

    config = {"session": {"rejoin_grace_seconds": 20}}

    async def test_new_peer_connection_rejoins_same_session(self):
        session, t, v = await self.go_live()
        await v.close()  # sends DTLS close_notify
        self.legs.remove(v)
        await v.client.expect_none("ended", 1.5, session=session)
        v2 = Leg(v.client, session)
        self.legs.append(v2)
        await v2.offer()
        await v2.apply_answer()
        frame = await first_video_frame(v2)
        self.assertGreater(frame.width, 0)
        await t.client.expect_none("ended", 0.5, session=session)
        entries = await self.gw.audit_api(session=session)
        self.assertTrue(harness.find_audit(entries, "leg_media_lost"),
                        harness.describe_entries(entries))
        self.assertTrue(harness.find_audit(entries, "leg_media_restored"),
                        harness.describe_entries(entries))
        await self.media_seen(session, v)
        await v.client.send({"type": "outcome", "session": session, "result": "verified"})
        e = await t.client.expect("ended", session=session)
        self.assertEqual(e.get("outcome"), "verified")


class GraceExpires(LiveBase):
    config = {"session": {"rejoin_grace_seconds": 2}}

    async def test_leg_gone_past_grace_ends_with_network(self):
        session, t, v = await self.go_live()
        await t.close()
        self.legs.remove(t)
        for leg in (t, v):
            e = await leg.client.expect("ended", session=session, timeout=LIVE_TIMEOUT)
            self.assertEqual(e.get("reason"), "network", e)
        entries = await self.gw.audit_api(session=session)
        ended = harness.find_audit(entries, "session_ended")
        self.assertTrue(ended and any(x.get("detail", {}).get("reason") == "network"
                                      for x in ended), harness.describe_entries(entries))


class QualityWarnings(LiveBase):
    """The verifier gets each leg's figures once a second, with the warnings
    the municipality's thresholds raise (here: at least 1280x720, aiortc
    sends 640x480); entering the warning state is audited once."""

    registry = harness.TEST_DATA / "registry-quality.json"

    async def test_low_resolution_is_flagged(self):
        session, t, v = await self.go_live()

        def flagged(m):
            return (m.get("leg") == "tablet" and m.get("stats", {}).get("video", {}).get("width")
                    and any(w.get("code") == "resolution_low" for w in m.get("warnings", [])))

        q = await v.client.expect("quality", session=session, pred=flagged,
                                  timeout=LIVE_TIMEOUT)
        self.assertEqual(q["stats"]["video"]["width"], 640, q)
        w = [w for w in q["warnings"] if w["code"] == "resolution_low"][0]
        self.assertEqual(w["limit"], 1280)
        # the tablet never receives quality reports
        self.assertFalse([m for m in t.client.log if m.get("type") == "quality"])
        entries = await self.gw.audit_api(session=session)
        warned = [e for e in harness.find_audit(entries, "quality_warning")
                  if e.get("detail", {}).get("leg") == "tablet"]
        self.assertEqual(len(warned), 1, harness.describe_entries(entries))
        self.assertIn("resolution_low", warned[0]["detail"]["codes"])

if __name__ == "__main__":
    harness.main()
