#!/bin/bash
# Generates the pre-encoded media the load generator replays: 10 s of VP8
# (~1.5 Mbit/s: 256x192 noise at 30 fps, which
# vp8enc cannot compress below that) and 10 s of Opus in 20 ms frames, each as
# RTP packets framed by RFC 4571 2-byte lengths (rtpstreampay).  Run once;
# nothing is encoded while the benchmark runs.  Usage: gen-media.sh OUTDIR
set -euo pipefail
out=${1:?usage: gen-media.sh OUTDIR}
mkdir -p "$out"
if [[ ! -s $out/video.rtp ]]; then
    gst-launch-1.0 -q videotestsrc num-buffers=300 pattern=snow \
        ! video/x-raw,width=256,height=192,framerate=30/1 \
        ! vp8enc target-bitrate=1500000 end-usage=cbr deadline=1 cpu-used=8 keyframe-max-dist=60 \
        ! rtpvp8pay mtu=1100 pt=96 ! rtpstreampay ! filesink location="$out/video.rtp.tmp"
    mv "$out/video.rtp.tmp" "$out/video.rtp"
fi
if [[ ! -s $out/audio.rtp ]]; then
    gst-launch-1.0 -q audiotestsrc num-buffers=500 samplesperbuffer=960 wave=sine \
        ! audio/x-raw,rate=48000,channels=2 ! opusenc frame-size=20 bitrate=32000 \
        ! rtpopuspay pt=111 ! rtpstreampay ! filesink location="$out/audio.rtp.tmp"
    mv "$out/audio.rtp.tmp" "$out/audio.rtp"
fi
