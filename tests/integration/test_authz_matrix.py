#!/usr/bin/python3
"""The authorization matrix (issue #11): every role against every WebSocket
message type and every HTTP endpoint, asserting exactly the table in
data/authz_matrix.json (linked from docs/protocol.md).

The table must be complete: the route table of signaling/md_http_api.c and
the message table of signaling/md_proto.c are read, and a route or message
type without a row fails the test, so a new endpoint cannot land unlisted."""

import asyncio
import http.client
import itertools
import json
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import DEFAULT_USERS, HOST, REPLY_TIMEOUT, SOURCE_ROOT, TEST_DATA  # noqa: E402
from harness import GatewayTestCase  # noqa: E402

MATRIX = json.loads((TEST_DATA / "authz_matrix.json").read_text())
ROLES = list(MATRIX["roles"])
# Refusals that mean "not for you"; any other answer is an allowed message
# (it may still fail on the session's state or its content).
AUTHZ_REFUSALS = {"forbidden", "session_unknown", "wrong_municipality", "not_authenticated"}

USERS = dict(DEFAULT_USERS)
for r in MATRIX["roles"].values():
    if "user" in r:
        USERS[r["user"]] = (r["role"], r["municipality"])

_ids = itertools.count(1)


def routes_in_source():
    """Every {"METHOD", "/path", handler} route entry of signaling/md_http_*.c."""
    routes = set()
    for f in sorted((SOURCE_ROOT / "signaling").glob("md_http_*.c")):
        routes |= {"%s %s" % m for m in re.findall(r'\{"([A-Z]+)",\s*"(/[^"]*)",\s*\w+',
                                                   f.read_text())}
    return routes


# MD_AUTHZ_PRINT=1: print the cells the gateway gives now (as JSON) instead of
# asserting, to review and copy into the table when a route or type is added.
PRINT = bool(os.environ.get("MD_AUTHZ_PRINT"))


def message_types_in_source():
    text = (SOURCE_ROOT / "signaling" / "md_proto.c").read_text()
    return set(re.findall(r'\[MD_MSG_[A-Z_]+\]\s*=\s*\{\s*"([a-z_]+)"', text))


def probe_message(mtype, session):
    msg = {"type": mtype, "id": "p%d" % next(_ids)}
    if mtype == "request":
        msg["procedure"] = "mynumber.new"
        return msg
    msg["session"] = session
    if mtype == "outcome":
        msg.update(result="aborted", reason="authorization matrix")
    elif mtype in ("offer", "restart"):
        msg["sdp"] = "v=0\r\n"
    elif mtype == "candidate":
        msg["candidate"] = None
    elif mtype == "record":
        msg["action"] = "start"
    elif mtype == "consent":
        msg["given"] = False
    return msg


class Completeness(GatewayTestCase):
    start_gateway = False

    async def test_every_route_and_message_type_has_a_row(self):
        http_rows = {k.split("?")[0] for k in MATRIX["http"]}
        missing = routes_in_source() - http_rows
        self.assertFalse(missing, "routes without a row in authz_matrix.json: %s" % missing)
        types = message_types_in_source()
        self.assertGreaterEqual(len(types), 9)
        for role in ROLES:
            row = MATRIX["websocket"][role]
            if "*" not in row:
                self.assertEqual(set(row), types, "message types of %s" % role)
            for row in MATRIX["http"].values():
                self.assertIn(role, row)


class Matrix(GatewayTestCase):
    users = USERS
    # The matrix sends a few hundred messages and logins from one address; it
    # is not a test of the rate limits.
    config = {"limits": {"messages_per_second": 10000, "message_burst": 10000,
                         "flood_close_after": 100000},
              "auth": {"login_per_source_per_minute": 10000, "login_per_minute": 10000}}

    async def connect_all(self):
        self.cookies, self.conns = {}, {}
        for role, spec in MATRIX["roles"].items():
            if "device" in spec:
                self.conns[role] = await self.device(spec["device"], name=role)
            elif "user" in spec:
                self.cookies[role] = await self.gw.login_ok(spec["user"])
                self.conns[role] = await self.staff(spec["user"], cookie=self.cookies[role],
                                                    name=role)

    async def new_request(self):
        tablet = self.conns["tablet_office"]
        rid = "r%d" % next(_ids)
        await tablet.send({"type": "request", "procedure": "mynumber.new", "id": rid})
        return (await tablet.expect("queued", re=rid))["session"]

    async def probe(self, role, msg):
        """The refusal code for msg from role, or "ok"."""
        c = self.conns[role]
        sync = "s%d" % next(_ids)
        await c.send(msg)
        # Messages are handled in order: once the sync's refusal is back, so
        # is any answer to the probe.
        await c.send({"type": "matrix-sync", "id": sync})
        await c.expect_error("unknown_type", re=sync)
        err = c._match("error", None, {"re": msg["id"]})
        queued = c._match("queued", None, {"re": msg["id"]})
        # A malformed probe would pass for "ok": every probe must be well formed.
        self.assertFalse(err and err["code"] in ("schema_invalid", "unknown_type"),
                         "probe %s: %s" % (msg, err))
        code = err["code"] if err and err["code"] in AUTHZ_REFUSALS else "ok"
        return code, (queued or {}).get("session")

    async def end(self, tablet_role, session):
        tablet = self.conns[tablet_role]
        await tablet.send({"type": "hangup", "session": session, "id": "h%d" % next(_ids)})
        await tablet.expect("ended", session=session)

    async def check_websocket(self):
        types = sorted(message_types_in_source())
        got, want = {}, {}
        verifier = self.conns["verifier_municipality"]
        for role in ROLES:
            if role == "none":
                continue
            for mtype in types:
                session = None
                if mtype != "request":
                    session = await self.new_request()
                    if mtype not in ("cancel", "accept"):
                        aid = "a%d" % next(_ids)
                        await verifier.send({"type": "accept", "session": session, "id": aid})
                        await verifier.expect("assigned", session=session, re=aid)
                code, created = await self.probe(role, probe_message(mtype, session))
                got[(role, mtype)] = code
                want[(role, mtype)] = MATRIX["websocket"][role].get(mtype)
                if session:
                    await self.end("tablet_office", session)
                if created:
                    await self.end(role, created)
        # no credentials: the staff socket is refused before any message
        c = await self.gw.connect_staff(cookie=None, expect_hello=False, name="none")
        self.clients.append(c)
        err = await c.expect("error")
        await c.expect_closed()
        for mtype in types:
            got[("none", mtype)] = err.get("code")
            want[("none", mtype)] = MATRIX["websocket"]["none"]["*"]
        if PRINT:
            table = {}
            for (role, mtype), code in got.items():
                table.setdefault(role, {})[mtype] = code
            print(json.dumps({"websocket": table}, indent=1))
            return
        for key in want:
            self.assertTrue(want[key] == "ok" or want[key] in AUTHZ_REFUSALS, key)
        wrong = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
        self.assertFalse(wrong, "WebSocket cells (got, table): %s" % wrong)

    def http_status(self, role, row):
        method, path = row.split(" ", 1)
        spec = MATRIX["roles"][role]
        device = "device" in spec
        ctx = self.gw.ssl_context(cert=self.gw.device_files(spec["device"]) if device else None)
        port = self.gw.device_port if device else self.gw.staff_port
        conn = http.client.HTTPSConnection(HOST, port, context=ctx, timeout=REPLY_TIMEOUT)
        try:
            headers = {"Origin": self.gw.origin}
            body = None
            if method == "POST":
                headers["Content-Type"] = "application/json"
                body = json.dumps({"username": spec.get("user", "nobody"),
                                   "password": "not the password", "totp": "000000"}
                                  if path == "/api/login" else {})
            if role in self.cookies:
                headers["Cookie"] = harness.COOKIE + "=" + self.cookies[role]
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()

    async def check_http(self):
        got, want = {}, {}
        rows = sorted(set(MATRIX["http"]) | (routes_in_source() if PRINT else set()))
        rows = [r for r in rows if r != "POST /api/logout"] + ["POST /api/logout"]
        for row in rows:
            for role in ROLES:
                got[(row, role)] = await asyncio.to_thread(self.http_status, role, row)
                want[(row, role)] = MATRIX["http"].get(row, {}).get(role)
        if PRINT:
            table = {}
            for (row, role), status in got.items():
                table.setdefault(row, {})[role] = status
            print(json.dumps({"http": table}, indent=1))
            return
        wrong = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
        self.assertFalse(wrong, "HTTP cells (got, table): %s" % wrong)

    async def test_matrix(self):
        await self.connect_all()
        await self.check_websocket()
        await self.check_http()


if __name__ == "__main__":
    harness.main()
