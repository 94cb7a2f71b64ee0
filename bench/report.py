#!/usr/bin/python3
"""Aggregates mdb-load results (one JSON per gateway and load level) into
bench/results/<stamp>.json, a Markdown table (.md) and a gnuplot PNG chart
(.png): forwarded packets/s and loss next to gateway CPU per forwarded packet
and latency against N, with the madoguchi/Janus ratio for each figure
measured in the same run.  With runs of `bench/compare --record` (mdb-load
--record), a second table per level sets the recorder's CPU per recorded
session against the relay's.  With `--capacity` (bench/compare --capacity),
the highest N each gateway held and every probe of the search.

Inputs may also be reports this script wrote before: their runs and
capacity probes are merged, so one run made of several invocations of
bench/compare becomes one report (`--latest` then makes it
bench/results/latest.json):

    bench/report.py --out bench/results/<stamp>-all --latest A.json B.json

`--holds RESULT` only says whether one mdb-load result holds the capacity
criteria: exit status 0 if it does, 1 if not, 3 if not and the generator
limited the run; bench/compare asks it after each probe."""
import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

# The capacity criteria: every session up, loss and latency p99 below these.
HOLD_LOSS_PCT = 0.1
HOLD_P99_US = 50000


def _get(r, *path):
    for k in path:
        if not isinstance(r, dict) or k not in r:
            return None
        r = r[k]
    return r


def holds(r):
    """(True, "") when an mdb-load result holds the capacity criteria, else
    (False, why)."""
    why = []
    if r["sessions_up"] != r["sessions"]:
        why.append("%d of %d sessions up" % (r["sessions_up"], r["sessions"]))
    if r["loss_pct"] >= HOLD_LOSS_PCT:
        why.append("loss %.3g %% >= %.3g %%" % (r["loss_pct"], HOLD_LOSS_PCT))
    p99 = r["latency_us"]["p99"]
    if p99 < 0 or p99 >= HOLD_P99_US:
        why.append("latency p99 %.0f us >= %d us" % (p99, HOLD_P99_US))
    return not why, "; ".join(why)


def generator_limited(r):
    """The generator, not the gateway, set this run's figures: a sender fell
    500 ms behind, or a pacing tick came later than the latency bound."""
    return r.get("generator_late", 0) > 0 or r.get("generator_max_stall_us", 0) >= HOLD_P99_US


FIGURES = [
    # key, label, getter, ratio (False for counts where a ratio means nothing)
    ("admission", "accepts refused with media_capacity (admission)",
     lambda r: r.get("admission_refusals"), False),
    ("setup_p50", "setup p50 (ms)", lambda r: r["setup_ms"]["p50"], True),
    ("setup_p95", "setup p95 (ms)", lambda r: r["setup_ms"]["p95"], True),
    ("setup_p99", "setup p99 (ms)", lambda r: r["setup_ms"]["p99"], True),
    ("fwd_pps", "forwarded pkt/s (receivers' count)", lambda r: r["forwarded_pps"], True),
    ("gw_sent_pps", "pkt/s the gateway's netns sent (veth)",
     lambda r: _get(r, "gateway_sent", "veth_tx_pps"), True),
    ("sent_pps", "pkt/s the generator sent", lambda r: r.get("sent_pps"), True),
    ("loss", "loss %", lambda r: r["loss_pct"], True),
    ("lost", "packets lost (receivers' trailer gaps)", lambda r: r.get("lost"), False),
    ("udp_gw", "of which: UDP receive-buffer drops in the gateway's netns",
     lambda r: _get(r, "udp_drops", "gateway", "rcvbuf_errors"), False),
    ("udp_gen", "of which: UDP receive-buffer drops in the generator's netns",
     lambda r: _get(r, "udp_drops", "generator", "rcvbuf_errors"), False),
    ("gw_drop", "of which: dropped by the gateway (its counters)",
     lambda r: _get(r, "gateway_counters", "dropped"), False),
    ("gw_in_lost", "gateway saw missing on arrival (RFC 3550)",
     lambda r: _get(r, "gateway_counters", "ingress_lost"), False),
    ("lat_p50", "latency p50 (µs)", lambda r: r["latency_us"]["p50"], True),
    ("lat_p99", "latency p99 (µs)", lambda r: r["latency_us"]["p99"], True),
    ("cpu_pkt", "CPU µs/pkt, per packet the receivers counted", lambda r: r.get("cpu_us_per_packet", -1), True),
    ("cpu_pkt_sent", "CPU µs/pkt, per packet the gateway's netns sent (veth)",
     lambda r: r.get("cpu_us_per_packet_sent"), True),
    ("cpu_pct", "gateway CPU %", lambda r: r.get("cpu_pct", -1), True),
    ("rss_sess", "RSS KB/session, all up", lambda r: r.get("rss_kb_per_session", -1), True),
    ("rss_end", "RSS KB/session, end of window", lambda r: r.get("rss_kb_per_session_end"), True),
    ("rss_conn", "RSS KB/session of the 2 signaling connections",
     lambda r: r.get("rss_kb_per_session_connections"), True),
    ("gen_cpu", "generator CPU %", lambda r: _get(r, "generator", "cpu_pct"), False),
    ("gen_late", "generator late ticks", lambda r: r.get("generator_late"), False),
    ("gen_stall", "generator's longest pacing stall (ms)",
     lambda r: r["generator_max_stall_us"] / 1000 if "generator_max_stall_us" in r else None, False),
    ("load", "machine load average at the start", lambda r: _get(r, "machine_at_start", "loadavg_1m"), False),
]


def recorder_stored(result_path):
    """Recordings stored and the recorder's drops, from the audit entries
    (`recording_stored`, docs/protocol.md) `audit export` wrote beside the
    run's result.json; None when there are none."""
    p = Path(result_path).parent / "audit.jsonl"
    if not p.exists():
        return None
    stored, dropped, states = 0, 0, {}
    for line in p.read_text().splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") != "recording_stored":
            continue
        d = e.get("detail") or {}
        stored += 1
        dropped += int(d.get("dropped_packets", 0))
        states[d.get("state", "?")] = states.get(d.get("state", "?"), 0) + 1
    return {"stored": stored, "dropped_packets": dropped, "states": states}


def recording_rows(plain, rec):
    """Per level: the gateway's CPU per session without and with recording
    (two runs of the same level in a row), their difference (what recording
    costs per recorded session) against the relay's CPU per session, and the
    same from the threads of the recorded run (recorder and GStreamer
    streaming threads against the media workers)."""
    def per_sess(r, key):
        us = r.get(key)
        if us is None or not r.get("window_s") or not r.get("sessions_up"):
            return None
        return us / r["window_s"] / r["sessions_up"] / 1e4  # % of one core per session

    def cpu_total(r):
        if r.get("cpu_pct") is None or not r.get("sessions_up"):
            return None
        return r["cpu_pct"] / r["sessions_up"]

    relay = cpu_total(plain) if plain else None
    with_rec = cpu_total(rec)
    diff = with_rec - relay if relay is not None and with_rec is not None else None
    thr_rec = per_sess(rec, "cpu_us_recorder_threads")
    thr_media = per_sess(rec, "cpu_us_media_workers")
    thr_ended = per_sess(rec, "cpu_us_ended_threads")
    return {
        "sessions": rec["sessions"],
        "sessions_recording": rec.get("sessions_recording"),
        "cpu_pct_per_session_plain": relay,
        "cpu_pct_per_session_recorded": with_rec,
        "recorder_cpu_pct_per_session": diff,
        "ratio_recorder_to_relay": diff / relay if diff is not None and relay else None,
        "threads_recorder_cpu_pct_per_session": thr_rec,
        "threads_media_workers_cpu_pct_per_session": thr_media,
        "threads_ratio": thr_rec / thr_media if thr_rec is not None and thr_media else None,
        "threads_ended_cpu_pct_per_session": thr_ended,
        "forwarded_pps": {"plain": plain and plain["forwarded_pps"], "recorded": rec["forwarded_pps"]},
        "recorder": rec.get("recorder_stored"),
    }


def capacity_from_probes(probes, stops):
    """Per gateway: the highest N that held, the lowest that did not, why the
    search stopped, whether the generator limited the first failing probe,
    and the probes in the order they ran."""
    out, last = {}, {}
    for p in probes:
        g = out.setdefault(p["gateway"], {"capacity": 0, "first_failing": None, "probes": []})
        g["probes"].append(p)
        last[(p["gateway"], p["sessions"])] = p  # a probe run again: its second verdict counts
    for (gw, n), p in last.items():
        g = out[gw]
        if p["holds"]:
            g["capacity"] = max(g["capacity"], n)
        elif g["first_failing"] is None or n < g["first_failing"]:
            g["first_failing"] = n
    for gw, g in out.items():
        g.update({k: v for k, v in stops.get(gw, {}).items() if k != "gateway"})
        # it held at every N tried: the search's limit, not the gateway's
        g["lower_bound"] = g["first_failing"] is None
        fail = [p for p in g["probes"] if p["sessions"] == g["first_failing"]]
        g["first_failing_generator_limited"] = bool(fail and fail[-1].get("generator_limited"))
    return out


def read_capacity(path):
    """bench/compare's capacity.jsonl: one line per probe, then one per
    gateway saying why its search stopped."""
    probes, stops = [], {}
    for line in Path(path).read_text().splitlines():
        e = json.loads(line)
        if "stopped" in e:
            stops[e["gateway"]] = e
            continue
        p = {"gateway": e["gateway"], "sessions": e["sessions"], "holds": e["holds"]}
        try:
            r = json.load(open(e["result"]))
        except (OSError, ValueError):
            r = None
        if r:
            p.update({"why": holds(r)[1], "sessions_up": r["sessions_up"], "loss_pct": r["loss_pct"],
                      "latency_p99_us": r["latency_us"]["p99"], "forwarded_pps": r["forwarded_pps"],
                      "cpu_pct": r.get("cpu_pct"), "generator_limited": generator_limited(r),
                      "generator_late": r.get("generator_late"),
                      "generator_max_stall_us": r.get("generator_max_stall_us")})
        else:
            p["why"] = "no result (the run failed)"
        probes.append(p)
    return probes, stops


def fmt(v):
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "%.3g" % v if abs(v) < 100 else "%.0f" % v
    return str(v)


def load_inputs(paths):
    """mdb-load results and earlier reports (merged: a later (gateway, N,
    recorded) replaces an earlier one)."""
    runs, probes, stops, commands, about = {}, [], {}, [], {}
    for p in paths:
        d = json.load(open(p))
        if "runs" in d:  # a report of this script
            commands += d.get("commands") or [d.get("command")]
            for k in ("machine", "setup"):
                about.setdefault(k, d.get(k))
            new = d["runs"]
            cap = d.get("capacity") or {}
            for gw, g in cap.items():
                probes += g.get("probes", [])
                stops[gw] = {k: v for k, v in g.items()
                             if k in ("stopped", "start", "max", "time_s", "probe_s")}
        else:
            if d.get("record"):
                d["recorder_stored"] = recorder_stored(p)
            new = [d]
        for r in new:
            key = (r["gateway"], r["sessions"], bool(r.get("record")))
            if key in runs:
                print("%s: replaces the earlier run of %s at N=%d" % (p, r["gateway"], r["sessions"]),
                      file=sys.stderr)
            runs[key] = r
    return list(runs.values()), probes, stops, [c for c in commands if c], about


def chart(out, machine, table):
    dat = out.with_suffix(".dat")
    cols = [("fwd_pps", "madoguchi"), ("fwd_pps", "janus"), ("sent_pps", "madoguchi"),
            ("sent_pps", "janus"), ("loss", "madoguchi"), ("loss", "janus"),
            ("cpu_pkt", "madoguchi"), ("cpu_pkt", "janus"), ("cpu_pkt_sent", "madoguchi"),
            ("cpu_pkt_sent", "janus"), ("lat_p99", "madoguchi"), ("lat_p99", "janus"),
            ("lat_p50", "madoguchi"), ("lat_p50", "janus")]
    with open(dat, "w") as f:
        f.write("# N " + " ".join("%s_%s" % (k, g) for k, g in cols) + "\n")
        for row in table:
            vals = [row[k][g] for k, g in cols]
            f.write("%d %s\n" % (row["sessions"], " ".join(
                "NaN" if v is None or v < 0 else str(v) for v in vals)))
    script = """
set terminal pngcairo size 1200,900 font ',10'
set output '%s'
set multiplot layout 2,2 title 'madoguchi vs Janus 1.1.2 (%s)'
set xlabel 'concurrent sessions N'
set grid
set key top left opaque
set ylabel 'packets/s'
plot '%s' using 1:2 with linespoints lc 1 title 'madoguchi forwarded', \\
     '' using 1:3 with linespoints lc 2 title 'Janus forwarded', \\
     '' using 1:4 with lines dt 2 lc 1 title 'generator sent (madoguchi run)', \\
     '' using 1:5 with lines dt 2 lc 2 title 'generator sent (Janus run)'
set ylabel 'loss (%%)'
set yrange [0:0.5<*]
plot '' using 1:6 with linespoints lc 1 title 'madoguchi', '' using 1:7 with linespoints lc 2 title 'Janus'
set ylabel 'gateway CPU per forwarded packet (µs)'
set autoscale y
plot '' using 1:8 with linespoints lc 1 title 'madoguchi (receivers count)', \\
     '' using 1:9 with linespoints lc 2 title 'Janus (receivers count)', \\
     '' using 1:10 with linespoints dt 2 lc 1 title 'madoguchi (veth count)', \\
     '' using 1:11 with linespoints dt 2 lc 2 title 'Janus (veth count)'
set ylabel 'one-way latency through the gateway (µs)'
set logscale y
plot '' using 1:12 with linespoints lc 1 title 'madoguchi p99', '' using 1:13 with linespoints lc 2 title 'Janus p99', \\
     '' using 1:14 with linespoints dt 2 lc 1 title 'madoguchi p50', '' using 1:15 with linespoints dt 2 lc 2 title 'Janus p50'
unset multiplot
""" % (out.with_suffix(".png"), machine.replace("'", ""), dat)
    try:  # (quiet: it warns about a flat loss axis when nothing was lost)
        subprocess.run(["gnuplot"], input=script, text=True, check=True, stderr=subprocess.PIPE)
    except (OSError, subprocess.CalledProcessError) as e:
        print("no chart: %s %s(install gnuplot-nox)" % (e, getattr(e, "stderr", "") or ""),
              file=sys.stderr)
    dat.unlink()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--machine", default="")
    ap.add_argument("--command", default="")
    ap.add_argument("--setup", default="", help="pinning, generator threads and I/O, as run")
    ap.add_argument("--capacity", help="bench/compare's capacity.jsonl")
    ap.add_argument("--latest", action="store_true",
                    help="also copy the report to latest.json beside --out")
    ap.add_argument("--holds", metavar="RESULT",
                    help="only check one mdb-load result against the capacity criteria")
    ap.add_argument("results", nargs="*")
    a = ap.parse_args()
    if a.holds:
        r = json.load(open(a.holds))
        ok, why = holds(r)
        gen = not ok and generator_limited(r)
        print("%s N=%d: %s%s" % (r["gateway"], r["sessions"], "holds" if ok else "does not hold: " + why,
                                 " (the generator limited it)" if gen else ""))
        sys.exit(0 if ok else 3 if gen else 1)
    if not a.out:
        ap.error("--out is needed")

    runs, probes, stops, commands, about = load_inputs(a.results)
    a.machine = a.machine or about.get("machine") or ""
    a.setup = a.setup or about.get("setup") or ""
    if a.capacity:
        more, more_stops = read_capacity(a.capacity)
        probes += more
        stops.update(more_stops)
    if a.command:
        commands.append(a.command)
    by, recs = {}, {}
    for r in runs:
        if r.get("record"):
            recs[r["sessions"]] = r
        else:
            by[(r["gateway"], r["sessions"])] = r
    levels = sorted({r["sessions"] for r in runs if not r.get("record")})
    recording = [recording_rows(by.get(("madoguchi", n)), recs[n]) for n in sorted(recs)]
    table = []
    for n in levels:
        md, ja = by.get(("madoguchi", n)), by.get(("janus", n))
        row = {"sessions": n}
        for key, label, get, ratio in FIGURES:
            m = get(md) if md else None
            j = get(ja) if ja else None
            ok = ratio and m is not None and j is not None and m >= 0 and j > 0
            row[key] = {"madoguchi": m, "janus": j, "ratio": m / j if ok else None}
        row["sessions_up"] = {"madoguchi": md and md["sessions_up"], "janus": ja and ja["sessions_up"]}
        row["generator_late"] = {"madoguchi": md and md["generator_late"], "janus": ja and ja["generator_late"]}
        table.append(row)
    capacity = capacity_from_probes(probes, stops)
    out = Path(a.out)
    doc = {"machine": a.machine, "command": " + ".join(commands), "commands": commands,
           "setup": a.setup, "levels": table, "runs": runs}
    if capacity:
        doc["capacity"] = capacity
        doc["capacity_criteria"] = {"loss_pct_below": HOLD_LOSS_PCT, "latency_p99_us_below": HOLD_P99_US,
                                    "all_sessions_up": True}
        m, j = capacity.get("madoguchi", {}), capacity.get("janus", {})
        ok = m.get("capacity") is not None and j.get("capacity")
        doc["capacity_ratio"] = m["capacity"] / j["capacity"] if ok else None
        # either capacity only a lower bound: the ratio is a bound too, or nothing
        doc["capacity_ratio_exact"] = bool(ok and not m["lower_bound"] and not j["lower_bound"])
    if recording:
        doc["recording"] = recording
        doc["recording_note"] = ("madoguchi only: Janus has no comparable recorder in this setup; "
                                 "CPU in % of one core per session over the window")
    out.with_suffix(".json").write_text(json.dumps(doc, indent=2, ensure_ascii=False))

    lines = ["Machine: %s  " % a.machine]
    lines += ["Command: `%s`  " % c for c in commands]
    if a.setup:
        lines.append("Setup: %s" % a.setup)
    if table:
        lines += ["", "| N | figure | madoguchi | Janus 1.1.2 | madoguchi/Janus |", "|---|---|---|---|---|"]
    for row in table:
        n = row["sessions"]
        lines.append("| %d | sessions up | %s | %s | |" % (n, fmt(row["sessions_up"]["madoguchi"]),
                                                         fmt(row["sessions_up"]["janus"])))
        for key, label, _, _ in FIGURES:
            f = row[key]
            lines.append("| %d | %s | %s | %s | %s |" % (n, label, fmt(f["madoguchi"]), fmt(f["janus"]),
                                                        fmt(f["ratio"])))
    if capacity:
        lines += ["", "Capacity: the highest N with every session up, loss < %g %% and latency p99 < %d ms."
                  % (HOLD_LOSS_PCT, HOLD_P99_US // 1000), "",
                  "| gateway | capacity (N) | lowest N that failed | search stopped | generator limited the failing probe |",
                  "|---|---|---|---|---|"]
        for gw in ("madoguchi", "janus"):
            if gw in capacity:
                g = capacity[gw]
                lines.append("| %s | %s%s | %s | %s | %s |" % (gw, "≥ " if g["lower_bound"] else "",
                                                              g["capacity"], fmt(g["first_failing"]),
                                                            g.get("stopped", "–"),
                                                            fmt(g["first_failing_generator_limited"])))
        if doc.get("capacity_ratio") is not None:
            lines.append("| madoguchi/Janus | %s%s | | | |" % (
                "" if doc["capacity_ratio_exact"] else "bound: ", fmt(doc["capacity_ratio"])))
        lines += ["", "| gateway | N | holds | why not | sessions up | loss % | latency p99 (µs) "
                  "| fwd pkt/s | gateway CPU % | generator late ticks | generator's longest stall (ms) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for gw in ("madoguchi", "janus"):
            for p in capacity.get(gw, {}).get("probes", []):
                stall = p.get("generator_max_stall_us")
                lines.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    gw, p["sessions"], fmt(p["holds"]), p.get("why") or "", fmt(p.get("sessions_up")),
                    fmt(p.get("loss_pct")), fmt(p.get("latency_p99_us")), fmt(p.get("forwarded_pps")),
                    fmt(p.get("cpu_pct")), fmt(p.get("generator_late")),
                    fmt(stall / 1000 if stall is not None else None)))
    if recording:
        lines += ["", "Recording (madoguchi only; Janus has no comparable recorder in this setup). "
                  "CPU in % of one core per session; \"plain\" and \"recorded\" are two runs of "
                  "the level in a row; the thread figures are from the recorded run alone.", "",
                  "| N | recording | CPU/session plain | CPU/session recorded | recorder CPU/session "
                  "(difference) | recorder/relay | recorder threads/session | media workers/session "
                  "| threads ratio | threads ended in the window/session | fwd pkt/s plain / recorded | recordings stored | recorder drops |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in recording:
            st = r["recorder"] or {}
            lines.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s |" % (
                r["sessions"], fmt(r["sessions_recording"]), fmt(r["cpu_pct_per_session_plain"]),
                fmt(r["cpu_pct_per_session_recorded"]), fmt(r["recorder_cpu_pct_per_session"]),
                fmt(r["ratio_recorder_to_relay"]), fmt(r["threads_recorder_cpu_pct_per_session"]),
                fmt(r["threads_media_workers_cpu_pct_per_session"]), fmt(r["threads_ratio"]),
                fmt(r["threads_ended_cpu_pct_per_session"]),
                fmt(r["forwarded_pps"]["plain"]), fmt(r["forwarded_pps"]["recorded"]),
                fmt(st.get("stored")), fmt(st.get("dropped_packets"))))
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    if table:
        chart(out, a.machine, table)
    if a.latest:
        shutil.copyfile(out.with_suffix(".json"), out.parent / "latest.json")


if __name__ == "__main__":
    main()
