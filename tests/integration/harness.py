"""Integration-test harness: a real `madoguchi serve` and an independent client.

Every test gets its own gateway: a temporary data directory, two free
loopback ports, a config file, certificates made by `madoguchi certs init`, the
registry imported with `madoguchi registry import`, staff accounts made with
`madoguchi user add` and tablet certificates made with `madoguchi device
issue`.  Those CLI steps run once per binary, hour, registry file and set of
accounts into a template directory (build-dir/test-templates/, shared by the
suite's test processes) that each test copies, so a test starts from a
pristine database in well under a second.

The client side is written independently of the gateway's C code: Python's
ssl, http.client and hmac (TOTP, RFC 6238) and the asyncio client of the
Debian `python3-websockets` package (10.4).  Run test files with
/usr/bin/python3 (Debian's interpreter, which has those modules).

Environment: MADOGUCHI (path of the built binary), MD_SOURCE_ROOT (repository
root), MD_IT_KEEP=1 keeps the temporary directories for inspection.

Only loopback addresses are used.
"""

import asyncio
import base64
import faulthandler
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
from pathlib import Path

import websockets

HERE = Path(__file__).resolve().parent
SOURCE_ROOT = Path(os.environ.get("MD_SOURCE_ROOT") or HERE.parent.parent)
TEST_DATA = HERE / "data"
SAMPLE_REGISTRY = SOURCE_ROOT / "data" / "sample-registry.json"
HOST = "127.0.0.1"
# The staff login cookie (docs/protocol.md): "__Host-" so only this host can set it.
COOKIE = "__Host-md_session"

# Sanitized builds are slower; give them more time for start-up and replies.
SLOW = 3 if any(k in os.environ for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS")) else 1
REPLY_TIMEOUT = 10 * SLOW

# meson's timeout for this file (MD_TEST_TIMEOUT, stretched like SLOW): a test
# still running shortly before it prints where it waits (see main()).
STARTED = time.monotonic()
TIME_LIMIT = float(os.environ.get("MD_TEST_TIMEOUT", 0)) * SLOW


def madoguchi_binary():
    path = os.environ.get("MADOGUCHI")
    if not path:
        for candidate in ("build/madoguchi", "build-test/madoguchi"):
            if Path(candidate).is_file():
                path = candidate
                break
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError("set MADOGUCHI to the built madoguchi binary (meson test does)")
    return str(Path(path).resolve())


# ---------------------------------------------------------------------------
# TOTP (RFC 6238 over RFC 4226), written here independently of core/md_totp.c

TOTP_STEP = 30


def base32_secret(secret):
    s = secret.strip().replace(" ", "").upper()
    return base64.b32decode(s + "=" * (-len(s) % 8))


def hotp(key, counter, digits=6, digest=hashlib.sha1):
    mac = hmac.new(key, struct.pack(">Q", counter), digest).digest()
    offset = mac[-1] & 0x0F  # RFC 4226 5.3 dynamic truncation
    code = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return "%0*d" % (digits, code % 10**digits)


def totp(secret_base32, unix_time=None, digits=6):
    t = time.time() if unix_time is None else unix_time
    return hotp(base32_secret(secret_base32), int(t // TOTP_STEP), digits)


def secret_from_otpauth(uri):
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme != "otpauth" or parsed.netloc != "totp":
        raise ValueError("not an otpauth://totp URI: %r" % uri)
    query = urllib.parse.parse_qs(parsed.query)
    return query["secret"][0]


# ---------------------------------------------------------------------------
# helpers


def free_ports(n=2):
    """n distinct free ports: each socket stays bound until all are chosen,
    so the kernel cannot hand out the same port twice."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((HOST, 0))
        return tuple(s.getsockname()[1] for s in socks)
    finally:
        for s in socks:
            s.close()


def walk_strings(value):
    """Every string (keys and values) inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from walk_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_strings(v)


def audit_mentions(entry, word):
    """True if an audit entry's event is `word` or its detail mentions it."""
    if entry.get("event") == word:
        return True
    detail = entry.get("detail")
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except ValueError:
            return word in detail
    return word in set(walk_strings(detail))


def find_audit(entries, word, **fields):
    """Audit entries that mention `word` (event or detail) and match fields."""
    return [
        e
        for e in entries
        if audit_mentions(e, word) and all(e.get(k) == v for k, v in fields.items())
    ]


def describe_entries(entries, limit=40):
    lines = []
    for e in entries[-limit:]:
        lines.append(
            "  seq=%s event=%s actor=%s mun=%s po=%s session=%s detail=%s"
            % (
                e.get("seq"),
                e.get("event"),
                e.get("actor"),
                e.get("municipality"),
                e.get("post_office"),
                e.get("session"),
                json.dumps(e.get("detail"), ensure_ascii=False),
            )
        )
    return "\n".join(lines)


class ServerError(AssertionError):
    pass


# ---------------------------------------------------------------------------
# WebSocket client with an inbox that tests match messages against


class Client:
    """One WebSocket connection.  A reader task files every message in an
    inbox; expect() takes the first message that matches, leaving others for
    later expectations (the gateway may interleave e.g. `queue` updates)."""

    def __init__(self, ws, name):
        self.ws = ws
        self.name = name
        self.cookie = None  # a staff connection's login (another connection may reuse it)
        self.inbox = []
        self.log = []
        self.log_times = []  # time.monotonic() at which each message of log was read
        self.close_code = None
        self.close_reason = None
        self.closed = asyncio.Event()
        self._waiters = []  # futures of expect() calls waiting for the next message
        self._task = asyncio.create_task(self._reader())

    async def _reader(self):
        try:
            async for raw in self.ws:
                try:
                    msg = json.loads(raw)
                except ValueError:
                    msg = {"type": "<not json>", "raw": raw[:200]}
                if not isinstance(msg, dict):
                    msg = {"type": "<not an object>", "raw": msg}
                self.log.append(msg)
                self.log_times.append(time.monotonic())
                self.inbox.append(msg)
                self._wake()
        except websockets.ConnectionClosed:
            pass
        except Exception as e:  # e.g. TLS failures surfacing on read
            self.log.append({"type": "<reader error>", "error": repr(e)})
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason
            self.closed.set()
            self._wake()

    def _wake(self):
        """Wakes every expect() waiting (one event loop thread: no lock)."""
        for f in self._waiters:
            if not f.done():
                f.set_result(None)
        self._waiters.clear()

    def received_at(self, msg):
        """time.monotonic() when msg (a message of this client) was read."""
        return next(t for m, t in zip(self.log, self.log_times) if m is msg)

    def transcript(self, limit=30):
        lines = ["messages received by %s (last %d):" % (self.name, limit)]
        for m in self.log[-limit:]:
            s = json.dumps(m, ensure_ascii=False)
            lines.append("  " + (s if len(s) < 400 else s[:400] + "..."))
        if self.closed.is_set():
            lines.append("  [closed: code=%s reason=%r]" % (self.close_code, self.close_reason))
        return "\n".join(lines)

    async def send(self, message):
        await self.ws.send(message if isinstance(message, (str, bytes)) else json.dumps(message))

    def _match(self, type_, pred, fields):
        for i, m in enumerate(self.inbox):
            if type_ is not None and m.get("type") != type_:
                continue
            if any(m.get(k) != v for k, v in fields.items()):
                continue
            if pred is not None and not pred(m):
                continue
            return self.inbox.pop(i)
        return None

    async def expect(self, type_, pred=None, timeout=None, **fields):
        """Waits for a message of `type_` whose fields equal `fields` and for
        which pred(msg) is true; returns it."""
        timeout = REPLY_TIMEOUT if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            m = self._match(type_, pred, fields)
            if m is not None:
                return m
            remaining = deadline - loop.time()
            if self.closed.is_set() or remaining <= 0:
                why = "connection closed" if self.closed.is_set() else "timeout"
                raise AssertionError(
                    "%s: expected %s %s (%s)\n%s"
                    % (self.name, type_, fields or "", why, self.transcript())
                )
            arrived = loop.create_future()
            self._waiters.append(arrived)
            await asyncio.wait([arrived], timeout=remaining)

    async def expect_error(self, code, timeout=None, **fields):
        return await self.expect("error", timeout=timeout, code=code, **fields)

    async def expect_none(self, type_, seconds, pred=None, **fields):
        """Asserts that no matching message arrives within `seconds`."""
        await asyncio.sleep(seconds)
        m = self._match(type_, pred, fields)
        if m is not None:
            raise AssertionError(
                "%s: unexpected %s\n%s" % (self.name, json.dumps(m, ensure_ascii=False),
                                           self.transcript())
            )

    async def expect_closed(self, timeout=None):
        timeout = REPLY_TIMEOUT if timeout is None else timeout
        try:
            await asyncio.wait_for(self.closed.wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError("%s: expected the gateway to close the connection\n%s"
                                 % (self.name, self.transcript()))
        return self.close_code

    def is_open(self):
        return not self.closed.is_set()

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 5)
        except Exception:
            pass
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):
            pass


# ---------------------------------------------------------------------------
# the gateway under test

DEFAULT_USERS = {
    # username: (role, municipality)
    "v-yasuoka": ("verifier", "204111"),
    "v-yasuoka2": ("verifier", "204111"),
    "v-nikko": ("verifier", "092061"),
    "v-lock": ("verifier", "204111"),
    "a-audit": ("auditor", None),
}
PASSWORD = "correct horse battery staple"

DEFAULT_DEVICES = {
    # device id: post office
    "TAB-NUKUTA-1": "PO-NUKUTA",
    "TAB-NUKUTA-2": "PO-NUKUTA",
    "TAB-NUKUTA-3": "PO-NUKUTA",
    "TAB-KANI-1": "PO-SAMPLE-KANI",
    "TAB-AEON-1": "PO-MIYAKONOJO-AEON",
    "TAB-KIYOTAKI-1": "PO-KIYOTAKI",
}


class Template:
    """A data directory prepared with the CLI, copied for each test.

    Kept next to the binary under test (test-templates/), keyed by the
    binary's size and mtime, the hour, and the registry, users and devices,
    so that the suite's many test processes build each one once rather than
    once each (the CLI's scrypt hashing of every account is most of the
    cost).  The hour keeps a template's audit entries as recent as a test
    process's own would have been."""

    cache = {}

    def __init__(self, home):
        self.dir = home / "data"  # what tests copy; home/template.json has the TOTP secrets
        self.secrets = json.loads((home / "template.json").read_text())["secrets"]

    @classmethod
    def get(cls, registry=SAMPLE_REGISTRY, users=None, devices=None):
        users = DEFAULT_USERS if users is None else users
        devices = DEFAULT_DEVICES if devices is None else devices
        key = (str(registry), tuple(sorted(users.items())), tuple(sorted(devices.items())))
        if key not in cls.cache:
            cls.cache[key] = cls.load_or_build(Path(registry), users, devices)
        return cls.cache[key]

    @classmethod
    def load_or_build(cls, registry, users, devices):
        binary = Path(madoguchi_binary())
        st = binary.stat()
        stamp = "%d-%d" % (st.st_size, st.st_mtime_ns)
        hour = int(time.time() // 3600)
        inputs = hashlib.sha256(registry.read_bytes())
        inputs.update(json.dumps([sorted(users.items()), sorted(devices.items())]).encode())
        root = binary.parent / "test-templates"
        home = root / stamp / str(hour) / inputs.hexdigest()[:32]
        if not (home / "template.json").is_file():
            home.parent.mkdir(parents=True, exist_ok=True)
            # Templates of an earlier binary, or older than the last hour
            # (the last hour's may still be being copied by another test).
            for old in root.iterdir():
                if old.name != stamp:
                    shutil.rmtree(old, ignore_errors=True)
            for old in (root / stamp).iterdir():
                if old.name.isdigit() and int(old.name) < hour - 1:
                    shutil.rmtree(old, ignore_errors=True)
            work = Path(tempfile.mkdtemp(prefix="building-", dir=home.parent))
            try:
                cls.build(work, registry, users, devices)
                try:
                    os.rename(work, home)  # atomic: another process may have won
                except OSError:
                    if not (home / "template.json").is_file():
                        raise
            finally:
                shutil.rmtree(work, ignore_errors=True)
        return cls(home)

    @classmethod
    def cleanup_all(cls):
        cls.cache.clear()  # the templates stay for the next test process

    @staticmethod
    def build(home, registry, users, devices):
        data = home / "data"
        data.mkdir()
        gw = Gateway(data, ports=(0, 0))
        gw.write_config()
        gw.cli("certs", "init")
        r = gw.cli("registry", "import", str(registry), check=False)
        if r.returncode != 0:
            raise ServerError("registry import of %s exited %d\n%s%s"
                              % (registry, r.returncode, r.stdout, r.stderr))
        secrets = {}
        for name, (role, municipality) in users.items():
            args = ["user", "add", name, "--role", role]
            if municipality:
                args += ["--municipality", municipality]
            args.append("--password-stdin")
            r = gw.cli(*args, input=PASSWORD + "\n")
            m = re.search(r"otpauth://\S+", r.stdout)
            if not m:
                raise ServerError("user add %s printed no otpauth:// URI:\n%s" % (name, r.stdout))
            secrets[name] = secret_from_otpauth(m.group(0))
        for device, post_office in devices.items():
            gw.cli("device", "issue", device, "--post-office", post_office)
        (data / "config.json").unlink()
        (home / "template.json").write_text(json.dumps({"secrets": secrets}))


class Gateway:
    """One `madoguchi serve` process and the CLI on its data directory."""

    def __init__(self, data_dir, ports=None, config=None, env=None):
        self.dir = Path(data_dir)
        self.env = env or {}  # added to the environment of `serve`
        self.binary = madoguchi_binary()
        if ports is None:
            ports = free_ports(2)
        self.staff_port, self.device_port = ports
        self.extra_config = config or {}
        self.config_path = self.dir / "config.json"
        self.log_path = self.dir / "serve.log"
        self.proc = None
        self.secrets = {}
        self.last_step = {}
        self.auditor_cookie = None
        self.exit_checked = False

    # -- configuration and CLI

    @property
    def origin(self):
        return "https://%s:%d" % (HOST, self.staff_port)

    @property
    def ca(self):
        return str(self.dir / "certs" / "ca.crt")

    @property
    def database(self):
        return str(self.dir / "madoguchi.db")

    def device_files(self, device):
        d = self.dir / "devices"
        return str(d / (device + ".crt")), str(d / (device + ".key"))

    def write_config(self):
        config = {
            "data_dir": str(self.dir),
            "log_level": "debug",
            "public_url": self.origin,
            "staff_listen": {"address": HOST, "port": self.staff_port},
            "device_listen": {"address": HOST, "port": self.device_port},
            # ICE on loopback only.  Admission by CPU load is off: the test's
            # own peers share the gateway's CPUs, and a worker waiting behind
            # them would read as the gateway's load and refuse sessions (under
            # ASan, on two cores).  The decision is tested in
            # tests/media/test_admit.c; the set-up window and max_sessions,
            # which stay on, in test_admission.py.
            "media": {"bind_address": HOST, "admit_cpu_percent": 100},
        }
        for k, v in self.extra_config.items():
            if isinstance(v, dict):
                config.setdefault(k, {}).update(v)
            else:
                config[k] = v
        self.config_path.write_text(json.dumps(config, indent=2))

    def cli(self, *args, input=None, check=True, timeout=60 * SLOW):
        cmd = [self.binary, "-c", str(self.config_path)] + [str(a) for a in args]
        io = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **io)
        if check and r.returncode != 0:
            raise ServerError(
                "madoguchi %s exited %d\n--- stdout\n%s--- stderr\n%s"
                % (" ".join(map(str, args)), r.returncode, r.stdout, r.stderr)
            )
        sanitizer_report(r.stderr, "madoguchi " + " ".join(map(str, args)))
        return r

    def sqlite(self, sql):
        r = subprocess.run(["sqlite3", self.database, sql], capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:
            raise AssertionError("sqlite3 %r failed: %s" % (sql, r.stderr))
        return r.stdout

    # -- process

    async def start(self):
        for attempt in range(3):
            if attempt:
                # Another process may have taken a port between free_ports() and bind().
                self.staff_port, self.device_port = free_ports(2)
            self.write_config()
            self.log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.config_path), "serve"],
                stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                env={**os.environ, **self.env} if self.env else None,
            )
            deadline = time.monotonic() + 20 * SLOW
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    status, body, _ = await asyncio.to_thread(self.http, "GET", "/healthz")
                    if status == 200:
                        return
                except (OSError, ssl.SSLError, http.client.HTTPException):
                    pass
                await asyncio.sleep(0.1)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
                self.log.close()
                raise ServerError("gateway did not answer /healthz in time\n" + self.log_tail())
            self.log.close()
            if "address already in use" not in self.log_text().lower():
                break
        raise ServerError("gateway exited with %s during start-up\n%s"
                          % (self.proc.returncode, self.log_tail()))

    async def stop(self):
        """SIGTERM; the gateway must exit 0 (clean shutdown) within 20 s."""
        if self.proc is None or self.exit_checked:
            return
        self.exit_checked = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 20 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.log.close()
                raise ServerError("gateway ignored SIGTERM for 20 s\n" + self.log_tail())
        self.log.close()
        rc = self.proc.returncode
        if rc != 0:
            raise ServerError("gateway exited %s (expected 0 = clean shutdown)\n%s"
                              % (rc, self.log_tail()))
        sanitizer_report(self.log_text(), "madoguchi serve")

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=80):
        text = self.log_text().splitlines()
        return "--- gateway log (%s, last %d lines)\n%s\n---" % (
            self.log_path, lines, "\n".join(text[-lines:]))

    # -- HTTP

    def ssl_context(self, cert=None):
        ctx = ssl.create_default_context(cafile=self.ca)
        if cert:
            ctx.load_cert_chain(*cert)
        return ctx

    def http(self, method, path, body=None, cookie=None, headers=None):
        """Blocking HTTPS request to the staff listener: (status, parsed body, response)."""
        conn = http.client.HTTPSConnection(HOST, self.staff_port, context=self.ssl_context(),
                                           timeout=REPLY_TIMEOUT)
        try:
            h = {"Origin": self.origin}
            if method == "POST" and body is None:
                body = "{}"  # the gateway takes a POST only as JSON
            if body is not None:
                h["Content-Type"] = "application/json"
                body = json.dumps(body) if not isinstance(body, (str, bytes)) else body
            if cookie:
                h["Cookie"] = COOKIE + "=" + cookie
            h.update(headers or {})
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            raw = resp.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode(errors="replace")
            return resp.status, parsed, resp
        finally:
            conn.close()

    async def ahttp(self, *args, **kwargs):
        return await asyncio.to_thread(self.http, *args, **kwargs)

    async def healthz(self):
        status, body, _ = await self.ahttp("GET", "/healthz")
        return status

    # -- staff login

    async def next_totp(self, username):
        """A valid code that was not used before (the gateway refuses replays,
        RFC 6238 5.2): the current step, or the next one (still in the +-1
        window), or after waiting for the clock."""
        waited = 0
        while True:
            now_step = int(time.time() // TOTP_STEP)
            step = max(now_step, self.last_step.get(username, -1) + 1)
            if step <= now_step + 1:
                self.last_step[username] = step
                if waited:
                    sys.stderr.write("%s: waited %d s for a TOTP step not used before\n"
                                     % (username, waited))
                return hotp(base32_secret(self.secrets[username]), step)
            await asyncio.sleep(1)
            waited += 1

    @staticmethod
    def wrong_totp(secret):
        """A 6-digit code that is not valid in the +-1 step window around now."""
        now_step = int(time.time() // TOTP_STEP)
        valid = {hotp(base32_secret(secret), s) for s in range(now_step - 2, now_step + 3)}
        code = 123456
        while "%06d" % code in valid:
            code += 1
        return "%06d" % code

    async def login(self, username, password=PASSWORD, code=None):
        """POST /api/login; returns (status, body, cookie or None)."""
        if code is None:
            if password == PASSWORD:
                code = await self.next_totp(username)
            else:
                # the password fails first; do not use up a step of the real code
                code = totp(self.secrets[username]) if username in self.secrets else "000000"
        status, body, resp = await self.ahttp(
            "POST", "/api/login", {"username": username, "password": password, "totp": code})
        cookie = None
        for header, value in resp.getheaders():
            if header.lower() == "set-cookie":
                m = re.match(r"\s*" + re.escape(COOKIE) + r"=([^;]*)", value)
                if m and m.group(1):
                    cookie = m.group(1)
        return status, body, cookie

    async def login_ok(self, username):
        status, body, cookie = await self.login(username)
        if status != 200 or not cookie:
            raise AssertionError("login of %s: %s %s (cookie %r)\n%s"
                                 % (username, status, body, cookie, self.log_tail(30)))
        return cookie

    # -- WebSocket connections

    async def connect_staff(self, username=None, cookie=None, origin=None, name=None,
                            expect_hello=True, subprotocols=None):
        if cookie is None and username is not None:
            cookie = await self.login_ok(username)
        headers = [("Cookie", COOKIE + "=" + cookie)] if cookie else []
        ws = await websockets.connect(
            "wss://%s:%d/ws" % (HOST, self.staff_port),
            ssl=self.ssl_context(),
            origin=origin or self.origin,
            extra_headers=headers,
            subprotocols=subprotocols,
            max_size=None,
            open_timeout=REPLY_TIMEOUT,
            ping_interval=None,
        )
        c = Client(ws, name or username or "staff")
        c.cookie = cookie
        if expect_hello:
            c.hello = await c.expect("hello")
        return c

    async def connect_device(self, device, cert=True, name=None, expect_hello=True,
                             subprotocols=None, cert_files=None):
        ctx = self.ssl_context(cert=(cert_files or self.device_files(device)) if cert else None)
        ws = await websockets.connect(
            "wss://%s:%d/ws" % (HOST, self.device_port),
            ssl=ctx,
            subprotocols=subprotocols,
            max_size=None,
            open_timeout=REPLY_TIMEOUT,
            ping_interval=None,
        )
        c = Client(ws, name or device)
        if expect_hello:
            c.hello = await c.expect("hello")
        return c

    # -- audit

    async def audit_api(self, **query):
        """GET /api/audit as the auditor a-audit; returns the entries."""
        if self.auditor_cookie is None:
            self.auditor_cookie = await self.login_ok("a-audit")
        q = urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        status, body, _ = await self.ahttp("GET", "/api/audit" + ("?" + q if q else ""),
                                           cookie=self.auditor_cookie)
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("entries"), list):
            raise AssertionError("GET /api/audit?%s: %s %r" % (q, status, body))
        return body["entries"]

    def audit_export(self, *args):
        """`madoguchi audit export` as a list of JSON objects."""
        out = self.dir / "export.jsonl"
        self.cli("audit", "export", "--out", out, *args)
        entries = []
        for n, line in enumerate(out.read_text().splitlines(), 1):
            if line.strip():
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    raise AssertionError("audit export line %d is not JSON: %r" % (n, line))
        return entries


def open_sealed(data_dir, context, stored):
    """Opens a sealed database value (docs/internals/security.md, "Sealed
    fields"), independently of core/md_sealed.c: "sealed1:" + hex(nonce 12 ||
    AES-256-GCM ciphertext || tag 16), AAD = context, key = HMAC-SHA256(evidence
    master key, "madoguchi field key v1")."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    prefix = "sealed1:"
    if not isinstance(stored, str) or not stored.startswith(prefix):
        raise AssertionError("not a sealed value: %r" % (stored,))
    master = (Path(data_dir) / "evidence.key").read_bytes()
    key = hmac.new(master, b"madoguchi field key v1", hashlib.sha256).digest()
    raw = bytes.fromhex(stored[len(prefix):])
    return AESGCM(key).decrypt(raw[:12], raw[12:], context.encode()).decode()


def sanitizer_report(text, what):
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer"):
        if marker in text:
            i = text.index(marker)
            raise ServerError("%s: sanitizer report:\n%s" % (what, text[max(0, i - 200) : i + 4000]))


# ---------------------------------------------------------------------------
# test case base class


class GatewayTestCase(unittest.IsolatedAsyncioTestCase):
    """Starts a fresh gateway for each test and always tears it down; a test
    fails if the gateway does not exit 0 on SIGTERM."""

    registry = SAMPLE_REGISTRY
    users = None
    devices = None
    config = {}
    start_gateway = True

    async def asyncSetUp(self):
        # unittest runs the loop in debug mode, whose checks on every callback
        # cost the aiortc peers a good share of their CPU
        asyncio.get_running_loop().set_debug(False)
        template = Template.get(self.registry, self.users, self.devices)
        self.tmp = Path(tempfile.mkdtemp(prefix="md-it-"))
        data = self.tmp / "data"
        shutil.copytree(template.dir, data)
        self.gw = Gateway(data, config=self.config, env=self.gateway_env())
        self.gw.secrets = dict(template.secrets)
        self.gw.write_config()
        self.clients = []
        self._watchdog = None
        if TIME_LIMIT:
            self._watchdog = asyncio.get_running_loop().call_later(
                STARTED + TIME_LIMIT - 60 - time.monotonic(), self._report_stuck)
        if self.start_gateway:
            await self.gw.start()

    def _report_stuck(self):
        """A minute before meson's timeout: the gateway's log and every task's
        stack, this test's own last (where the log's tail shows it), so that
        a hang says where it waits."""
        sys.stderr.write("\n=== %s still running a minute before the time limit\n%s\n"
                         % (self.id(), self.gw.log_tail(40)))
        tasks = sorted(asyncio.all_tasks(),
                       key=lambda t: getattr(t.get_coro(), "__name__", "") == self._testMethodName)
        for task in tasks:
            sys.stderr.write("task %s:\n" % task.get_name())
            coro = task.get_coro()
            while coro is not None:  # the whole await chain, not only the task's own frame
                frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
                if frame is not None:
                    sys.stderr.write("  %s:%d in %s\n" % (frame.f_code.co_filename, frame.f_lineno,
                                                         frame.f_code.co_name))
                coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        sys.stderr.flush()

    def gateway_env(self):
        """Variables added to the environment of `serve` (self.tmp exists)."""
        return {}

    async def asyncTearDown(self):
        if self._watchdog:
            self._watchdog.cancel()
        for c in self.clients:
            await c.close()
        # Python 3.11 records a failure in the result as it happens (and
        # resets _outcome.success for the teardown), so ask the result.
        result = self._outcome.result
        failed = any(test is self for test, _ in
                     getattr(result, "failures", []) + getattr(result, "errors", []))
        try:
            await self.gw.stop()
        finally:
            self.gw.kill()
            keep = os.environ.get("MD_IT_KEEP") or failed
            if failed:
                sys.stderr.write(self.gw.log_tail(60) + "\n")
            if keep:
                sys.stderr.write("kept %s\n" % self.tmp)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)

    # convenience wrappers that register clients for teardown

    async def staff(self, username, **kw):
        c = await self.gw.connect_staff(username, **kw)
        self.clients.append(c)
        return c

    async def device(self, device, **kw):
        c = await self.gw.connect_device(device, **kw)
        self.clients.append(c)
        return c

    async def request(self, tablet, procedure="mynumber.new", id_="req-1"):
        """The tablet asks for a session; returns the `queued` reply."""
        await tablet.send({"type": "request", "procedure": procedure, "id": id_})
        return await tablet.expect("queued")

    async def assert_audited(self, word, **fields):
        """An audit entry mentioning `word` (event or detail) exists, seen
        through GET /api/audit."""
        entries = await self.gw.audit_api()
        found = find_audit(entries, word, **fields)
        if not found:
            self.fail("no audit entry mentions %r with %s; the log has:\n%s"
                      % (word, fields, describe_entries(entries)))
        return found

    async def assert_alive(self):
        self.assertTrue(self.gw.alive(), "gateway died\n" + self.gw.log_tail())
        self.assertEqual(await self.gw.healthz(), 200)


def main():
    """Runs the calling test module with unittest (verbose)."""
    if TIME_LIMIT:
        # If the event loop itself is blocked, the per-test report above
        # cannot run: then every thread's stack, 30 s before meson's timeout.
        faulthandler.dump_traceback_later(max(TIME_LIMIT - 30, 1), exit=True)
    try:
        unittest.main(module="__main__", verbosity=2)
    finally:
        Template.cleanup_all()
