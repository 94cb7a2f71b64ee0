#!/usr/bin/python3
"""Writes the benchmark's registry to stdout: one municipality (pick
assignment, recording `optional`: nothing is recorded unless the verifier
sends `record`, as mdb-load --record does) with one designated post office
per PER sessions, for N sessions.  Usage: registry.py N PER.  With `--code N PER I` it prints
the municipality code of session I instead.  Codes are 6-digit local
government codes: 5 digits + check digit (weights 6,5,4,3,2, check =
(11 - sum mod 11) mod 10)."""
import json
import sys


def code(m):
    base = "%05d" % (71000 + m)
    s = sum(int(d) * w for d, w in zip(base, (6, 5, 4, 3, 2)))
    return base + str((11 - s % 11) % 10)


def registry(n, per):
    muns, pos, des = [], [], []
    for m in range((n + per - 1) // per):
        c = code(m)
        muns.append({"code": c, "name": "bench-%d" % m, "prefecture": "bench",
                     "security_policy": {"recording": "optional", "retention_days": 365,
                                         "max_file_mb": 20, "file_types": ["image/jpeg"],
                                         "require_device_cert": True, "assignment": "pick"}})
        pos.append({"id": "PO-MDB-%d" % m, "name": "bench %d" % m, "kind": "direct",
                    "municipality": c})
        des.append({"municipality": c, "post_office": "PO-MDB-%d" % m,
                    "procedures": ["mynumber.new"], "from": "2019-07-29", "until": "2099-03-31",
                    "council_resolution": {"date": "2019-06-14", "number": "bench"},
                    "japan_post_consultation": "2019-05-20"})
    return {"municipalities": muns, "post_offices": pos, "designations": des}


if __name__ == "__main__":
    if sys.argv[1] == "--code":
        print(code(int(sys.argv[4]) // int(sys.argv[3])))
    else:
        print(json.dumps(registry(int(sys.argv[1]), int(sys.argv[2])), indent=1))
