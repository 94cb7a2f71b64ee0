#!/usr/bin/python3
"""Chat over WebRTC data channels through the real gateway (DESIGN 4,
docs/protocol.md "Data channels"): both legs are aiortc peers that open a
"chat" channel in-band (DCEP) before their offer.  Every message is stored in
the session's encrypted transcript and audited (id, leg, SHA-256; never the
text) before it is relayed to the other leg and acknowledged to the sender."""

import asyncio
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from webrtc import LIVE_TIMEOUT, LiveBase  # noqa: E402

TEXTS = {
    "tablet": "マイナンバーカードを見せます。",
    "verifier": "Thank you, please hold it closer to the camera.",
}


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


class Chat(LiveBase):
    async def exchange(self, t, v):
        tc, vc = t.channels["chat"], v.channels["chat"]
        await asyncio.gather(tc.open(), vc.open())
        tc.chat("t-1", TEXTS["tablet"])
        vc.chat("v-1", TEXTS["verifier"])
        for me, mine, theirs, their_text in ((tc, "t-1", "v-1", TEXTS["verifier"]),
                                             (vc, "v-1", "t-1", TEXTS["tablet"])):
            got = {}
            while len(got) < 2:
                m = await me.receive()
                got[m["type"]] = m
            self.assertEqual(got["chat_ack"], {"type": "chat_ack", "id": mine})
            self.assertEqual(got["chat"]["id"], theirs)
            self.assertEqual(got["chat"]["text"], their_text)
            self.assertIsInstance(got["chat"]["ts"], int)

    async def test_chat_both_ways_stored_and_audited(self):
        session, t, v = await self.go_live(("chat",), ("chat",))
        await self.exchange(t, v)

        entries = await self.gw.audit_api(session=session)
        chats = [e for e in entries if e.get("event") == "chat"]
        self.assertEqual(len(chats), 2, harness.describe_entries(entries))
        by_id = {e["detail"]["id"]: e for e in chats}
        self.assertEqual(by_id["t-1"]["detail"]["sha256"], sha256(TEXTS["tablet"]))
        self.assertEqual(by_id["t-1"]["detail"]["leg"], "tablet")
        self.assertEqual(by_id["v-1"]["detail"]["sha256"], sha256(TEXTS["verifier"]))
        self.assertEqual(by_id["v-1"]["detail"]["leg"], "verifier")
        dump = json.dumps(entries, ensure_ascii=False)
        for text in TEXTS.values():
            self.assertNotIn(text, dump, "chat text in the audit log")

        transcript = self.gw.dir / "evidence" / "sessions" / session / "transcript"
        self.assertTrue(transcript.is_file(), transcript)
        data = transcript.read_bytes()
        self.assertTrue(data.startswith(b"MDEVCHT1"), data[:16])
        for text in TEXTS.values():
            self.assertNotIn(text.encode(), data, "plaintext in the transcript")
        for path in (self.gw.dir / "evidence").rglob("*"):
            if path.is_file():
                for text in TEXTS.values():
                    self.assertNotIn(text.encode(), path.read_bytes(), path)

        await t.client.send({"type": "hangup", "session": session})
        for leg in (t, v):
            await leg.client.expect("ended", session=session)

    async def test_refused_label_session_goes_on(self):
        session, t, v = await self.go_live(("chat", "shell"), ("chat",))
        shell = t.channels["shell"]
        await asyncio.wait_for(shell.closed, LIVE_TIMEOUT)
        self.assertNotEqual(shell.dc.readyState, "open")
        await self.exchange(t, v)
        entries = await self.gw.audit_api(session=session)
        refused = [e for e in entries if e.get("event") == "datachannel_refused"]
        self.assertEqual(len(refused), 1, harness.describe_entries(entries))
        self.assertEqual(refused[0]["detail"], {"leg": "tablet", "code": "datachannel_refused"})
        for leg in (t, v):
            self.assertEqual(leg.pc.connectionState, "connected")


if __name__ == "__main__":
    harness.main()
