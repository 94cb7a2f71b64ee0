#!/usr/bin/env python3
"""Where a madoguchi session's set-up time goes, from the gateway's own log.

Reads the debug-level `setup` events of a gateway log (md_log_setup(): one
JSON line per step with a CLOCK_MONOTONIC `t_us`; docs/internals/signaling.md,
"Where set-up time goes") and prints, over the sessions that reached first
media both ways, p50/p95/p99 of each step from the gateway's receipt of
`accept`, and of the time between consecutive steps.  Where a step happens on
both legs, the later leg counts (the session waits for it), as in mdb-load's
setup_stages_p50_ms.

    bench/setup-phases.py GATEWAY_LOG [--json]

bench/compare with MDB_MD_LOG_LEVEL=debug MDB_KEEP=1 keeps the logs
(/tmp/mdb-compare-*/madoguchi-N/gateway.log).
"""
import json
import sys

# (name, event, per leg) in the order a set-up goes through them.
STEPS = [
    ("assigned", "assigned", False),  # row + audit committed, `assigned` queued
    ("offer", "offer", True),  # the client's offer read by the control thread
    ("connecting", "connecting", False),
    ("offer_on_worker", "offer_on_worker", True),
    ("answered", "answered", True),  # ICE agent, DTLS, answer built on the worker
    ("answer_sent", "answer_sent", True),  # on the control thread, queued to the client
    ("ice_connected", "ice_connected", True),
    ("dtls_connected", "dtls_connected", True),
    ("first_media_out", "first_media_out", True),  # relayed to the leg: media both ways
    ("leg_connected", "leg_connected", True),
    ("live", "live", False),
]


# Per leg: (name, from event, to event).
LEG_STEPS = [
    ("answer -> ICE connected", "answer_sent", "ice_connected"),
    ("ICE connected -> DTLS done", "ice_connected", "dtls_connected"),
    ("DTLS done -> first media out", "dtls_connected", "first_media_out"),
]


def percentile(values, p):
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def summary(values):
    return {"p50": percentile(values, 50), "p95": percentile(values, 95),
            "p99": percentile(values, 99)}


def sessions_of(lines):
    sessions = {}
    for line in lines:
        if '"mod":"setup"' not in line:
            continue
        try:
            o = json.loads(line)
        except ValueError:
            continue
        s = sessions.setdefault(o["session"], {})
        key = (o["event"], o.get("leg"))
        s.setdefault(key, o["t_us"])  # the first time a step happens
    return sessions


def timeline(s):
    """ms from accept to each step (the later leg), or None if incomplete."""
    t0 = s.get(("accept", None))
    if t0 is None:
        return None
    out = {}
    for name, event, per_leg in STEPS:
        if per_leg:
            ts = [s.get((event, leg)) for leg in ("tablet", "verifier")]
            if None in ts:
                return None if name == "first_media_out" else out
            out[name] = (max(ts) - t0) / 1000.0
        else:
            t = s.get((event, None))
            if t is not None:
                out[name] = (t - t0) / 1000.0
    return out


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8", errors="replace") as f:
        sessions = sessions_of(f)
    lines = [t for t in (timeline(s) for s in sessions.values()) if t and "first_media_out" in t]
    table = {"sessions": len(lines), "from_accept_ms": {}, "step_ms": {}}
    table["per_leg_ms"] = {}
    for name, a, b in LEG_STEPS:
        d = [(s[(b, leg)] - s[(a, leg)]) / 1000.0 for s in sessions.values()
             for leg in ("tablet", "verifier") if (a, leg) in s and (b, leg) in s]
        if d:
            table["per_leg_ms"][name] = summary(d)
    table["legs_dtls_held"] = sum(
        1 for s in sessions.values() for leg in ("tablet", "verifier")
        if ("dtls_held", leg) in s)
    prev = None
    for name, _, _ in STEPS:
        vals = [t[name] for t in lines if name in t]
        if not vals:
            continue
        table["from_accept_ms"][name] = summary(vals)
        if prev:
            steps = [t[name] - t[prev] for t in lines if name in t and prev in t]
            table["step_ms"][f"{prev} -> {name}"] = summary(steps)
        prev = name
    if "--json" in argv:
        json.dump(table, sys.stdout, indent=1)
        print()
        return 0
    print(f"{table['sessions']} sessions with media both ways")
    print(f"{'from accept (ms)':<36}{'p50':>9}{'p95':>9}{'p99':>9}")
    for name, v in table["from_accept_ms"].items():
        print(f"{name:<36}{v['p50']:9.1f}{v['p95']:9.1f}{v['p99']:9.1f}")
    print(f"{'step (ms)':<36}{'p50':>9}{'p95':>9}{'p99':>9}")
    for name, v in table["step_ms"].items():
        print(f"{name:<36}{v['p50']:9.1f}{v['p95']:9.1f}{v['p99']:9.1f}")
    print(f"{'per leg (ms)':<36}{'p50':>9}{'p95':>9}{'p99':>9}")
    for name, v in table["per_leg_ms"].items():
        print(f"{name:<36}{v['p50']:9.1f}{v['p95']:9.1f}{v['p99']:9.1f}")
    print(f"legs whose DTLS flight waited for the ICE pair: {table['legs_dtls_held']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
