#!/usr/bin/python3
"""Aggregates mdb-load results (one JSON per gateway and load level) into
bench/results/<stamp>.json, a Markdown table (.md) and a gnuplot PNG chart
(.png) of gateway CPU per forwarded packet and latency against N, with the
madoguchi/Janus ratio for each figure measured in the same run.  With runs
of `bench/compare --record` (mdb-load --record), a second table per level
sets the recorder's CPU per recorded session against the relay's."""
import argparse
import json
import subprocess
import sys
from pathlib import Path

def _get(r, *path):
    for k in path:
        if not isinstance(r, dict) or k not in r:
            return None
        r = r[k]
    return r


FIGURES = [
    # key, label, getter, ratio (False for counts where a ratio means nothing)
    ("setup_p50", "setup p50 (ms)", lambda r: r["setup_ms"]["p50"], True),
    ("setup_p95", "setup p95 (ms)", lambda r: r["setup_ms"]["p95"], True),
    ("setup_p99", "setup p99 (ms)", lambda r: r["setup_ms"]["p99"], True),
    ("fwd_pps", "forwarded pkt/s", lambda r: r["forwarded_pps"], True),
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
    ("cpu_pkt", "CPU µs/pkt", lambda r: r.get("cpu_us_per_packet", -1), True),
    ("cpu_pct", "gateway CPU %", lambda r: r.get("cpu_pct", -1), True),
    ("rss_sess", "RSS KB/session, all up", lambda r: r.get("rss_kb_per_session", -1), True),
    ("rss_end", "RSS KB/session, end of window", lambda r: r.get("rss_kb_per_session_end"), True),
    ("rss_conn", "RSS KB/session of the 2 signaling connections",
     lambda r: r.get("rss_kb_per_session_connections"), True),
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


def fmt(v):
    if v is None:
        return "–"
    if isinstance(v, float):
        return "%.3g" % v if abs(v) < 100 else "%.0f" % v
    return str(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--machine", default="")
    ap.add_argument("--command", default="")
    ap.add_argument("results", nargs="*")
    a = ap.parse_args()
    runs = []
    for p in a.results:
        r = json.load(open(p))
        if r.get("record"):
            r["recorder_stored"] = recorder_stored(p)
        runs.append(r)
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
    out = Path(a.out)
    doc = {"machine": a.machine, "command": a.command, "levels": table, "runs": runs}
    if recording:
        doc["recording"] = recording
        doc["recording_note"] = ("madoguchi only: Janus has no comparable recorder in this setup; "
                                 "CPU in % of one core per session over the window")
    out.with_suffix(".json").write_text(json.dumps(doc, indent=2, ensure_ascii=False))

    lines = ["Machine: %s  " % a.machine, "Command: `%s`" % a.command, "",
             "| N | figure | madoguchi | Janus 1.1.2 | madoguchi/Janus |", "|---|---|---|---|---|"]
    for row in table:
        n = row["sessions"]
        lines.append("| %d | sessions up | %s | %s | |" % (n, fmt(row["sessions_up"]["madoguchi"]),
                                                         fmt(row["sessions_up"]["janus"])))
        for key, label, _, _ in FIGURES:
            f = row[key]
            lines.append("| %d | %s | %s | %s | %s |" % (n, label, fmt(f["madoguchi"]), fmt(f["janus"]),
                                                        fmt(f["ratio"])))
        lines.append("| %d | generator late ticks | %s | %s | |" % (
            n, fmt(row["generator_late"]["madoguchi"]), fmt(row["generator_late"]["janus"])))
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

    dat = out.with_suffix(".dat")
    with open(dat, "w") as f:
        f.write("# N md_cpu janus_cpu md_lat99 janus_lat99 md_lat50 janus_lat50\n")
        for row in table:
            vals = [row["cpu_pkt"]["madoguchi"], row["cpu_pkt"]["janus"], row["lat_p99"]["madoguchi"],
                    row["lat_p99"]["janus"], row["lat_p50"]["madoguchi"], row["lat_p50"]["janus"]]
            f.write("%d %s\n" % (row["sessions"], " ".join("NaN" if v is None or v < 0 else str(v) for v in vals)))
    script = """
set terminal pngcairo size 1100,450 font ',10'
set output '%s'
set multiplot layout 1,2 title 'madoguchi vs Janus 1.1.2 (%s)'
set xlabel 'concurrent sessions N'
set grid
set key top left
set ylabel 'gateway CPU per forwarded packet (µs)'
plot '%s' using 1:2 with linespoints title 'madoguchi', '' using 1:3 with linespoints title 'Janus'
set ylabel 'one-way latency through the gateway (µs)'
set logscale y
plot '%s' using 1:4 with linespoints title 'madoguchi p99', '' using 1:5 with linespoints title 'Janus p99', \\
     '' using 1:6 with linespoints dt 2 title 'madoguchi p50', '' using 1:7 with linespoints dt 2 title 'Janus p50'
unset multiplot
""" % (out.with_suffix(".png"), a.machine.replace("'", ""), dat, dat)
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print("no chart: %s (install gnuplot-nox)" % e, file=sys.stderr)
    dat.unlink()


if __name__ == "__main__":
    main()
