#!/usr/bin/python3
"""A real `madoguchi serve` for the browser tests, set up by the integration
harness (tests/integration/harness.py) and controlled over stdin/stdout.

The Node tests spawn this with /usr/bin/python3.  It makes a data directory
with the CLI (certs init, registry import of data/sample-registry.json, one
verifier, one tablet certificate), starts the gateway on two free loopback
ports with ICE bound to 127.0.0.1, waits for /healthz and prints one JSON line:

  {"ready": true, "origin", "staff_port", "device_port", "dir", "log", "ca",
   "device": {"id", "cert", "key"}, "users": {name: totp_secret}, "password"}

Then it reads stdin.  The line `totp USER` prints {"totp": CODE} with a code
not used before (the gateway refuses replays); `stop` (or end of input, e.g.
when the Node test dies) sends SIGTERM and prints {"stopped": true} or
{"stopped": false, "error": ...}: the gateway must exit 0 with no sanitizer
report, as in the integration tests.  `audit [SESSION]` prints
{"audit": [entries]} from `madoguchi audit export` (one session's, if given).
Errors before `ready` are printed as
{"ready": false, "error": ...}.  The temporary directory, with serve.log, is
removed after a clean stop unless MD_IT_KEEP is set or `keep` was sent.

`seed` makes three finished sessions with real peers (seed.py) and prints
{"seed": {...}}; it needs MD_BR_USERS/MD_BR_DEVICES with v-nikko and
TAB-KIYOTAKI-1.

`sql QUERY` prints {"rows": [objects]} (blobs as hex) from the gateway's SQLite file, opened
read-only ({"error": ...} if the query fails, e.g. on a table that does not
exist).  `ready` also names the data directory (`data`: config, database,
evidence/).  MD_BR_REGISTRY names a registry file to import instead of
data/sample-registry.json (e.g. a copy with another security policy).

Only loopback addresses are used, unless MD_BR_CONFIG (a JSON object merged
into the config) puts a listener or ICE on an address of a network namespace
made by the test (test_ice_restart.mjs).
"""

import asyncio
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

import harness  # noqa: E402

USERS = {"v-yasuoka": ("verifier", "204111")}
DEVICES = {"TAB-NUKUTA-1": "PO-NUKUTA"}
# MD_BR_USERS / MD_BR_DEVICES: JSON objects of more accounts ({name: [role,
# municipality or null]}) and tablets ({id: post office}), e.g. the consoles'.
USERS.update({k: tuple(v) for k, v in json.loads(os.environ.get("MD_BR_USERS") or "{}").items()})
DEVICES.update(json.loads(os.environ.get("MD_BR_DEVICES") or "{}"))


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def query(database, sql):
    """Rows of `sql` on the gateway's database, read-only, as JSON objects."""
    try:
        db = sqlite3.connect("file:%s?mode=ro" % database, uri=True, timeout=10)
        try:
            db.row_factory = sqlite3.Row
            return {"rows": [{k: v.hex() if isinstance(v, bytes) else v for k, v in dict(r).items()}
                             for r in db.execute(sql).fetchall()]}
        finally:
            db.close()
    except sqlite3.Error as e:
        return {"error": "%s: %s" % (type(e).__name__, e)}


async def main():
    tmp = Path(tempfile.mkdtemp(prefix="md-br-"))
    gw = None
    keep = bool(os.environ.get("MD_IT_KEEP"))
    try:
        registry = os.environ.get("MD_BR_REGISTRY") or harness.SAMPLE_REGISTRY
        template = harness.Template.get(registry, USERS, DEVICES)
        data = tmp / "data"
        shutil.copytree(template.dir, data)
        # MD_BR_CONFIG: JSON merged into the harness's config (e.g. the
        # device listener and ICE on a test's veth address, a short grace).
        # web.test_pages: the thin pages of web/test/ on the client library,
        # which the lower-level browser tests drive (off by default).
        config = {"web": {"test_pages": True}}
        for k, v in json.loads(os.environ.get("MD_BR_CONFIG") or "{}").items():
            if isinstance(v, dict):
                config.setdefault(k, {}).update(v)
            else:
                config[k] = v
        gw = harness.Gateway(data, config=config)
        gw.secrets = dict(template.secrets)
        await gw.start()
        device = next(iter(DEVICES))
        crt, key = gw.device_files(device)
        out({"ready": True, "origin": gw.origin, "staff_port": gw.staff_port,
             "device_port": gw.device_port, "dir": str(tmp), "data": str(data),
             "database": gw.database, "log": str(gw.log_path),
             "ca": gw.ca, "device": {"id": device, "cert": crt, "key": key},
             "users": gw.secrets, "password": harness.PASSWORD})
    except Exception as e:
        out({"ready": False, "error": "%s\n%s" % (e, traceback.format_exc()),
             "log": gw.log_tail() if gw else ""})
        if gw:
            gw.kill()
        harness.Template.cleanup_all()
        return 1

    rc = 0
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            words = line.split()
            if not line or words == ["stop"]:
                break
            if words[:1] == ["totp"] and len(words) == 2:
                out({"totp": await gw.next_totp(words[1])})
            elif words == ["keep"]:
                keep = True
                out({"keep": str(tmp)})
            elif words[:1] == ["audit"] and len(words) <= 2:
                # `madoguchi audit export`, optionally one session's entries
                entries = await asyncio.to_thread(gw.audit_export)
                if len(words) == 2:
                    entries = [e for e in entries if e.get("session") == words[1]]
                out({"audit": entries})
            elif words[:1] == ["sql"] and len(words) > 1:
                out(await asyncio.to_thread(query, gw.database, line.strip()[3:].strip()))
            elif words == ["seed"]:
                # three finished sessions with real peers (seed.py)
                import seed
                out({"seed": await seed.run(gw)})
            elif words == ["alive"]:
                out({"alive": gw.alive()})
            else:
                out({"error": "unknown command %r" % line.strip()})
        try:
            await gw.stop()
            out({"stopped": True})
        except Exception as e:
            keep = True
            rc = 1
            out({"stopped": False, "error": str(e)})
    finally:
        gw.kill()
        harness.Template.cleanup_all()
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
