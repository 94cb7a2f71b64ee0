#!/usr/bin/python3
"""Chat over real WebRTC data channels (aiortc) through the gateway's md_media,
over loopback only (docs/internals/datachannels.md, "Tests").

Two aiortc peers play the tablet and the verifier.  Each opens a "chat" data
channel in-band (DCEP, RFC 8832) before its offer, so the offer carries the
m=application UDP/DTLS/SCTP webrtc-datachannel line; both connect to one
session of tests/media/media_peer, which stands in for the control thread
and delivers every MD_MEDIA_CHAT to the other leg at once.

Modes:
  chat     chat both ways: each peer receives the other's text and a chat_ack
           for its own; the gateway's event carries the text's SHA-256; an
           invalid message (control character) is neither relayed nor acked
  refused  the tablet also opens "shell": the gateway resets that stream
           (channel_refused event, the channel closes) and chat goes on
  queued   the verifier opens only "file" at first; the tablet's message waits
           on the worker until the verifier opens "chat", then arrives
  resend   the verifier gets a chat but does not acknowledge it, then comes
           back with a new PeerConnection (a page reload): the chat is sent
           again on the new association; once acknowledged, a third
           PeerConnection does not get it again

Usage: aiortc_chat.py <path to media_peer> <mode>
"""
import asyncio
import hashlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aiortc_relay import (TIMEOUT, answered, close_peers, make_peer, run_main,  # noqa: E402
                          with_media_peer)


def rfc8841(sdp):
    """aiortc 1.4 offers the pre-RFC 8841 form ("DTLS/SCTP 5000" + a=sctpmap);
    browsers offer "UDP/DTLS/SCTP webrtc-datachannel" + a=sctp-port.  The
    verifier's offer is rewritten to the browser form so both are exercised
    (aiortc takes either form in the answer)."""
    out = []
    for line in sdp.splitlines():
        if line.startswith("m=application ") and line.endswith(" DTLS/SCTP 5000"):
            line = line.replace("DTLS/SCTP 5000", "UDP/DTLS/SCTP webrtc-datachannel")
        elif line.startswith("a=sctpmap:5000 "):
            line = "a=sctp-port:5000"
        out.append(line)
    return "\r\n".join(out) + "\r\n"


async def connect_pair(gw, tablet, verifier):
    for pc in (tablet, verifier):
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        gw.send(op="offer", leg=pc.name, sdp=rfc8841(sdp) if pc is verifier else sdp)
    answers = {}
    for pc in (tablet, verifier):
        answers[pc.name] = await answered(gw, pc)
    # A refused channel of the leg that connects first may be reported before
    # the other leg connects: kept for run() instead of being skipped.
    connected, gw.early_refused = set(), []
    while connected != {"tablet", "verifier"}:
        ev = await gw.wait(lambda e: e["event"] in ("connected", "channel_refused"), "connected")
        if ev["event"] == "channel_refused":
            gw.early_refused.append(ev)
        else:
            connected.add(ev["leg"])
    return answers


class Channel:
    """An aiortc data channel with a queue of the JSON messages it received."""

    def __init__(self, pc, label):
        self.dc = pc.createDataChannel(label)
        self.inbox = asyncio.Queue()
        self.opened = asyncio.get_event_loop().create_future()
        self.closed = asyncio.get_event_loop().create_future()
        self.dc.on("open", lambda: self.opened.done() or self.opened.set_result(True))
        self.dc.on("close", lambda: self.closed.done() or self.closed.set_result(True))
        self.dc.on("message", lambda m: self.inbox.put_nowait(json.loads(m)))

    async def open(self):
        await asyncio.wait_for(self.opened, TIMEOUT)

    def chat(self, msg_id, text):
        self.dc.send(json.dumps({"type": "chat", "id": msg_id, "ts": int(time.time() * 1000),
                                 "text": text}))

    async def expect(self, **fields):
        m = await asyncio.wait_for(self.inbox.get(), TIMEOUT)
        for k, v in fields.items():
            assert m.get(k) == v, "expected %r, got %r" % (fields, m)
        return m

    async def quiet(self, seconds=0.5):
        try:
            m = await asyncio.wait_for(self.inbox.get(), seconds)
        except asyncio.TimeoutError:
            return
        raise AssertionError("unexpected message %r" % m)


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


async def chat_event(gw, leg, msg_id):
    return await gw.wait(lambda e: e["event"] == "chat" and e["leg"] == leg and e["id"] == msg_id,
                         "chat from " + leg)


async def exchange(gw, t_chat, v_chat):
    texts = {"tablet": "本人確認をお願いします\n(tab)\t", "verifier": "Please show your card."}
    t_chat.chat("t-1", texts["tablet"])
    v_chat.chat("v-1", texts["verifier"])
    for leg, mid in (("tablet", "t-1"), ("verifier", "v-1")):
        ev = await chat_event(gw, leg, mid)
        assert ev["sha256"] == sha256(texts[leg]), ev
        assert ev["text"] == texts[leg], ev
    for me, other, mine, theirs in ((t_chat, v_chat, "t-1", "v-1"), (v_chat, t_chat, "v-1", "t-1")):
        got = {}
        for _ in range(2):
            m = await me.expect()
            got[m["type"]] = m
        assert got["chat_ack"]["id"] == mine, got
        assert got["chat"]["id"] == theirs, got
        assert got["chat"]["text"] == texts["tablet" if theirs == "t-1" else "verifier"], got
    print("chat relayed both ways with acks", flush=True)


async def rejoin(gw, old):
    """The verifier's page reloads: a new PeerConnection (new DTLS
    fingerprint) for the same leg of the same session."""
    await close_peers(old)
    await gw.wait(lambda e: e["event"] == "failed" and e["leg"] == "verifier",
                  "the old verifier connection closed")  # DTLS close_notify
    pc = make_peer("verifier", drain=True)
    chat = Channel(pc, "chat")
    await pc.setLocalDescription(await pc.createOffer())
    gw.send(op="offer", leg="verifier", sdp=pc.localDescription.sdp)
    await answered(gw, pc)
    await gw.wait(lambda e: e["event"] == "connected" and e["leg"] == "verifier", "connected")
    await chat.open()
    return pc, chat


async def resend(gw, t_chat, verifier, v_chat):
    t_chat.chat("r-1", "before the verifier reloads")
    await chat_event(gw, "tablet", "r-1")
    await t_chat.expect(type="chat_ack", id="r-1")
    await v_chat.expect(type="chat", id="r-1")  # arrived; not acknowledged
    verifier, v_chat = await rejoin(gw, verifier)
    await v_chat.expect(type="chat", id="r-1", text="before the verifier reloads")
    print("unacknowledged chat sent again on the new association", flush=True)
    v_chat.dc.send(json.dumps({"type": "chat_ack", "id": "r-1"}))
    t_chat.chat("r-2", "after the reload")
    await chat_event(gw, "tablet", "r-2")
    await v_chat.expect(type="chat", id="r-2")
    v_chat.dc.send(json.dumps({"type": "chat_ack", "id": "r-2"}))
    await asyncio.sleep(0.5)  # the acks reach the gateway before the next reload
    verifier, v_chat = await rejoin(gw, verifier)
    await v_chat.quiet(1.0)
    print("acknowledged chat not sent again", flush=True)
    await close_peers(verifier)


async def run(gw, mode):
    tablet, verifier = make_peer("tablet", drain=True), make_peer("verifier", drain=True)
    t_chat = Channel(tablet, "chat")
    shell = Channel(tablet, "shell") if mode == "refused" else None
    v_first = Channel(verifier, "file" if mode == "queued" else "chat")
    answers = await connect_pair(gw, tablet, verifier)
    # RFC 3264 6: each answer uses the form its offer used.
    assert "m=application 9 DTLS/SCTP 5000" in answers["tablet"], answers["tablet"]
    assert "a=sctpmap:5000 webrtc-datachannel" in answers["tablet"], answers["tablet"]
    v = answers["verifier"]
    assert "m=application 9 UDP/DTLS/SCTP webrtc-datachannel" in v and "a=sctp-port:5000" in v, v
    for sdp in answers.values():
        assert "a=max-message-size:262144" in sdp and "a=group:BUNDLE 0 1 2" in sdp, sdp
    await t_chat.open()
    await v_first.open()
    if mode == "queued":
        t_chat.chat("early-1", "waiting for the verifier")
        await chat_event(gw, "tablet", "early-1")
        await t_chat.expect(type="chat_ack", id="early-1")
        v_chat = Channel(verifier, "chat")
        await v_chat.open()
        await v_chat.expect(type="chat", id="early-1", text="waiting for the verifier")
        print("queued chat delivered once the channel opened", flush=True)
    else:
        v_chat = v_first
    if mode == "resend":
        await resend(gw, t_chat, verifier, v_first)
        await close_peers(tablet)
        return
    if shell:
        ev = gw.early_refused.pop(0) if gw.early_refused else await gw.wait(
            lambda e: e["event"] == "channel_refused", "channel_refused")
        assert ev["leg"] == "tablet" and ev["label"] == "shell", ev
        assert ev["error"] == "datachannel_refused", ev
        await asyncio.wait_for(shell.closed, TIMEOUT)
        print("label shell refused, its channel closed", flush=True)
    await exchange(gw, t_chat, v_chat)
    if mode == "chat":
        t_chat.chat("bad-1", "bell\x07")  # chat_invalid: dropped at the gateway
        t_chat.dc.send("not json")
        await t_chat.quiet()
        await v_chat.quiet()
        t_chat.chat("t-2", "after the invalid ones")
        await t_chat.expect(type="chat_ack", id="t-2")
        await v_chat.expect(type="chat", id="t-2")
        print("invalid chat neither relayed nor acknowledged", flush=True)
    await close_peers(tablet, verifier)


async def main(peer_path, mode):
    await with_media_peer(peer_path, lambda gw: run(gw, mode))
    print("ok", mode, flush=True)


if __name__ == "__main__":
    run_main(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "chat"))
