#!/usr/bin/python3
"""Aggregates mdb-load results (one JSON per gateway and load level) into
bench/results/<stamp>.json, a Markdown table (.md) and a gnuplot PNG chart
(.png) of gateway CPU per forwarded packet and latency against N, with the
madoguchi/Janus ratio for each figure measured in the same run."""
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
    runs = [json.load(open(p)) for p in a.results]
    by = {}
    for r in runs:
        by[(r["gateway"], r["sessions"])] = r
    levels = sorted({r["sessions"] for r in runs})
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
