#!/usr/bin/python3
"""Writes the seed corpus of fuzz_export (tests/fuzz/corpus/export/) and the
public key it is signed with (tests/fuzz/data/export.pub), in the export
format of core/md_audit_export.h: a manifest line, then hash-chained entries
(core/md_audit.h).  Run once; the outputs are committed.  Uses Debian's
python3-cryptography (an aiortc dependency) for Ed25519."""

import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

HERE = Path(__file__).resolve().parent
key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"madoguchi fuzz export").digest())
pub = key.public_key()
raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
pem = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
(HERE / "data").mkdir(exist_ok=True)
(HERE / "data" / "export.pub").write_bytes(pem)
key_id = hashlib.sha256(raw).hexdigest()[:16]

KEYS = ("actor", "detail", "event", "municipality", "post_office", "seq", "session", "ts")
entries, prev = [], "0" * 64
for seq, (event, detail) in enumerate([
        ("gateway_started", {"version": "0.1.0"}),
        ("request", {"procedure": "mynumber.new"}),
        ("outcome", {"result": "verified"}),
        ("session_ended", {"reason": "outcome", "outcome": "verified"})], 1):
    e = {"actor": "system", "detail": detail, "event": event, "municipality": "204111",
         "post_office": "PO-NUKUTA", "seq": seq, "session": "ab" * 16 if seq > 1 else None,
         "ts": 1796500000000 + seq}
    canon = json.dumps({k: e[k] for k in KEYS}, sort_keys=True, separators=(",", ":"),
                       ensure_ascii=False)
    h = hashlib.sha256((prev + "\n" + canon).encode()).hexdigest()
    entries.append(dict(e, prev_hash=prev, hash=h))
    prev = h
sig = key.sign(("madoguchi-audit-checkpoint\n%d\n%s" % (len(entries), prev)).encode()).hex()
manifest = {"manifest": {"format": "madoguchi-audit-export/1", "exported_at": "2026-12-06T00:00:00Z",
                         "exported_by": "staff:a-audit", "filter": {}, "entries": len(entries),
                         "head": {"seq": len(entries), "hash": prev},
                         "checkpoint": {"seq": len(entries), "ts": 1796500000009, "hash": prev,
                                        "key_id": key_id, "signature": sig,
                                        "public_key": raw.hex()}}}


def write(name, lines):
    (HERE / "corpus" / "export" / name).write_text(
        "\n".join(json.dumps(x, ensure_ascii=False) if not isinstance(x, str) else x
                  for x in lines) + "\n")


write("valid.jsonl", [manifest] + entries)
altered = [dict(e) for e in entries]
altered[2]["actor"] = "staff:someone-else"
write("altered.jsonl", [manifest] + altered)
write("subset.jsonl", [dict(manifest, manifest=dict(manifest["manifest"], entries=2))]
      + [entries[1], entries[3]])
write("no-manifest.jsonl", entries)
write("garbage.jsonl", [manifest, "{not json", "[]"])
