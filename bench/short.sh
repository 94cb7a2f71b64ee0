#!/bin/bash
# Short mode of the benchmark, run by `meson test --suite bench`: a few
# seconds, 2 sessions, madoguchi only, on loopback (no root, no network
# namespaces).  It proves the harness works end to end (logins, device
# certificates, ICE, DTLS-SRTP, media both ways) and that every figure is
# present, and that the generator's peers moved to its batched path; it
# never asserts a speed.  Both sessions run with --record (the
# verifier starts recording, the tablet consents), so the path of
# `bench/compare --record` is covered too: every session records, the
# recorder threads' CPU is reported and each recording is stored (audited).
# Usage: short.sh MADOGUCHI MDB_LOAD
set -euo pipefail
md=$(realpath "${1:?usage: short.sh MADOGUCHI MDB_LOAD}")
load=$(realpath "${2:?usage: short.sh MADOGUCHI MDB_LOAD}")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

if ! command -v gst-launch-1.0 >/dev/null || ! gst-inspect-1.0 vp8enc >/dev/null 2>&1 ||
    ! gst-inspect-1.0 rtpstreampay >/dev/null 2>&1; then
    echo "SKIP: needs gstreamer1.0-tools and gstreamer1.0-plugins-good (vp8enc, rtpstreampay)"
    exit 77
fi

tmp=$(mktemp -d /tmp/mdb-short-XXXXXX)
gw=
cleanup() {
    [[ -n $gw ]] && kill "$gw" 2>/dev/null && wait "$gw" 2>/dev/null || true
    [[ -n ${MDB_KEEP:-} ]] || rm -rf "$tmp"
}
trap cleanup EXIT

n=2
"$here/gen-media.sh" "$tmp/media"
mdb_md_prepare "$md" "$tmp/data" "$n"
{ read -r sp; read -r dp; } < <(mdb_free_ports 2)
mdb_md_config "$tmp/data" 127.0.0.1 "$sp" "$dp"
"$md" -c "$tmp/data/config.json" serve >"$tmp/serve.log" 2>&1 &
gw=$!
mdb_wait_healthz 127.0.0.1 "$sp" "$tmp/data/certs/ca.crt" "$gw" ||
    { cat "$tmp/serve.log"; echo "gateway did not start"; exit 1; }
mdb_md_plan "$tmp/data" 127.0.0.1 "$sp" "$dp" 127.0.0.1 >"$tmp/plan"
"$load" --plan "$tmp/plan" --video "$tmp/media/video.rtp" --audio "$tmp/media/audio.rtp" \
    --sessions "$n" --duration 3 --setup-timeout 20 --gateway-pid "$gw" --out "$tmp/result.json" \
    --record
kill -TERM "$gw"
wait "$gw" || { echo "gateway exited $? on SIGTERM"; tail -20 "$tmp/serve.log"; exit 1; }
gw=
"$md" -c "$tmp/data/config.json" audit export >"$tmp/audit.jsonl"

python3 - "$tmp/result.json" "$n" "$tmp/audit.jsonl" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1])); n = int(sys.argv[2])
stored = [e for e in map(json.loads, open(sys.argv[3])) if e["event"] == "recording_stored"]
problems = []
if r["sessions_up"] != n: problems.append("sessions_up %s != %d" % (r["sessions_up"], n))
if not r["forwarded_pps"] > 0: problems.append("no packets forwarded")
if not r["latency_us"]["samples"] > 0: problems.append("no latency samples")
for k in ("setup_ms", "loss_pct", "cpu_us_per_packet", "rss_kb_per_session", "sent_pps",
          "rss_kb_per_session_end", "udp_drops", "gateway_counters", "gateway_sent",
          "cpu_us_per_packet_sent", "generator", "machine_at_start"):
    if k not in r: problems.append("figure %s missing" % k)
# every peer left libnice's receive path for the batched one (mdb_io.c)
if r.get("generator", {}).get("batched_peers") != 2 * n:
    problems.append("%s of %d peers batched" % (r.get("generator", {}).get("batched_peers"), 2 * n))
if r["setup_ms"]["p50"] < 0: problems.append("no setup time")
if r.get("sessions_recording") != n: problems.append("sessions_recording %s != %d" % (r.get("sessions_recording"), n))
for k in ("cpu_us_by_thread", "cpu_us_recorder_threads", "cpu_us_media_workers"):
    if k not in r: problems.append("figure %s missing" % k)
if len(stored) != n: problems.append("%d recordings stored, want %d" % (len(stored), n))
if problems:
    print("FAIL:", "; ".join(problems)); sys.exit(1)
print("ok: %d sessions recorded, %.0f packets/s forwarded, loss %.2f%%, latency p50 %.0f us, "
      "recorder threads %.0f us, media workers %.0f us, %d stored, %.1f datagrams per recvmmsg"
      % (n, r["forwarded_pps"], r["loss_pct"], r["latency_us"]["p50"],
         r["cpu_us_recorder_threads"], r["cpu_us_media_workers"], len(stored),
         r["generator"]["datagrams_per_recvmmsg"]))
print("threads:", json.dumps(r["cpu_us_by_thread"]))
EOF
