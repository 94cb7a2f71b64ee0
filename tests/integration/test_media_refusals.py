#!/usr/bin/python3
"""Media set-up refusals through the real daemon, with real aiortc legs
(docs/protocol.md, "Media"; DESIGN.md section 4):

- the two legs have no video codec in common: both get `codec_mismatch`, no
  answer is ever sent, the session ends with reason `media` (no half session),
  and the audit says why;
- a leg whose offer carries a DTLS fingerprint that does not match its
  certificate is refused at the handshake (RFC 8842 5 / RFC 5763 5), the
  refusal is audited, and another live session on the same gateway keeps
  flowing.
"""

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from webrtc import LIVE_TIMEOUT, Leg, LiveBase  # noqa: E402  (also narrows ICE to loopback)

from aiortc import RTCRtpSender  # noqa: E402

import harness  # noqa: E402


def prefer_video_codec(leg, mime):
    """Offer only `mime` for video (no RTX, which would name other codecs)."""
    codecs = [c for c in RTCRtpSender.getCapabilities("video").codecs
              if c.mimeType.lower() == mime.lower()]
    assert codecs, "aiortc cannot send %s" % mime
    for t in leg.pc.getTransceivers():
        if t.kind == "video":
            t.setCodecPreferences(codecs)


def corrupt_fingerprint(sdp):
    """Flips the first byte of every a=fingerprint so it no longer matches."""
    out = []
    for line in sdp.splitlines():
        if line.startswith("a=fingerprint:"):
            algo, value = line[len("a=fingerprint:"):].split(" ", 1)
            first = "%02X" % (int(value[:2], 16) ^ 0xFF)
            line = "a=fingerprint:%s %s%s" % (algo, first, value[2:])
        out.append(line)
    return "\r\n".join(out) + "\r\n"


class MediaRefusals(LiveBase):
    async def test_codec_mismatch_refuses_both_legs(self):
        session, t, v = await self.assigned_session()
        prefer_video_codec(t, "video/VP8")
        prefer_video_codec(v, "video/H264")
        await asyncio.gather(t.offer(), v.offer())
        for leg in (t, v):
            err = await leg.client.expect("error", session=session, timeout=LIVE_TIMEOUT)
            self.assertEqual(err.get("code"), "codec_mismatch", err)
            self.assertTrue(err.get("detail"), "the error names the codecs: %s" % err)
            ended = await leg.client.expect("ended", session=session, timeout=LIVE_TIMEOUT)
            self.assertEqual(ended.get("reason"), "media", ended)
            # no half session: neither leg was ever answered
            self.assertFalse([m for m in leg.client.log if m.get("type") == "answer"],
                             leg.client.transcript())
        failed = await self.assert_audited("leg_failed")
        self.assertTrue(harness.find_audit(await self.gw.audit_api(session=session),
                                           "codec_mismatch"))
        await self.assert_alive()
        self.assertTrue(failed)

    async def test_wrong_fingerprint_is_refused_and_others_unaffected(self):
        # a healthy live session first
        live_session, lt, lv = await self.go_live()

        # a second session whose tablet lies about its certificate
        verifier = await self.staff("v-yasuoka2")
        tablet = await self.device("TAB-NUKUTA-2")
        session = (await self.request(tablet, id_="req-2"))["session"]
        await verifier.send({"type": "accept", "session": session})
        await tablet.expect("assigned", session=session)
        await verifier.expect("assigned", session=session)
        bt, bv = Leg(tablet, session), Leg(verifier, session)
        self.legs += [bt, bv]

        await bt.pc.setLocalDescription(await bt.pc.createOffer())
        await tablet.send({"type": "offer", "session": session,
                           "sdp": corrupt_fingerprint(bt.pc.localDescription.sdp)})
        await tablet.send({"type": "candidate", "session": session, "candidate": None,
                           "mid": "0"})
        await bv.offer()
        await asyncio.gather(bt.apply_answer(), bv.apply_answer())

        err = await tablet.expect("error", session=session, timeout=LIVE_TIMEOUT)
        self.assertEqual(err.get("code"), "dtls_fingerprint_mismatch", err)
        ended = await verifier.expect("ended", session=session, timeout=LIVE_TIMEOUT)
        self.assertEqual(ended.get("reason"), "media", ended)
        entries = await self.gw.audit_api(session=session)
        self.assertTrue(harness.find_audit(entries, "dtls_fingerprint_mismatch"),
                        harness.describe_entries(entries))

        # the first session is still live and still carries video
        self.assertEqual(lt.pc.connectionState, "connected")
        self.assertFalse([m for m in lt.client.log
                          if m.get("type") == "ended" and m.get("session") == live_session])
        track = None
        while track is None or track.kind != "video":
            track = await asyncio.wait_for(lv.tracks.get(), LIVE_TIMEOUT)
        frame = await asyncio.wait_for(track.recv(), LIVE_TIMEOUT)
        self.assertGreater(frame.width, 0)
        await self.media_seen(live_session, lv)
        await lv.client.send({"type": "outcome", "session": live_session,
                              "result": "verified"})
        e = await lt.client.expect("ended", session=live_session)
        self.assertEqual(e.get("outcome"), "verified")



class GcmOnly(LiveBase):
    """A municipality whose policy requires SRTP AEAD_AES_128_GCM (RFC 7714):
    aiortc offers only AES_CM_128_HMAC_SHA1_80 in DTLS-SRTP, so its legs are
    refused at the handshake and the session ends with reason media."""

    registry = harness.TEST_DATA / "registry-gcm-only.json"

    async def test_leg_without_gcm_is_refused(self):
        session, t, v = await self.assigned_session()
        await asyncio.gather(t.offer(), v.offer())
        await asyncio.gather(t.apply_answer(), v.apply_answer())
        err = await t.client.expect("error", session=session, timeout=LIVE_TIMEOUT)
        self.assertEqual(err.get("code"), "dtls_failed", err)
        self.assertIn("SRTP", err.get("detail", ""), err)
        for leg in (t, v):
            ended = await leg.client.expect("ended", session=session, timeout=LIVE_TIMEOUT)
            self.assertEqual(ended.get("reason"), "media", ended)
        entries = await self.gw.audit_api(session=session)
        self.assertTrue(harness.find_audit(entries, "dtls_failed"),
                        harness.describe_entries(entries))

if __name__ == "__main__":
    harness.main()
