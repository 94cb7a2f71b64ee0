#!/usr/bin/python3
"""Writes the codec fixtures of tests/media/test_quality.c (run once; the
outputs are committed).  Real encoder output, packetized as on the wire:

  vp8_key_176x144.rtp   first RTP payload of a VP8 keyframe (RFC 7741
                        descriptor with picture ID), aiortc's libvpx encoder
  vp8_delta_176x144.rtp first payload of the next (inter) frame
  h264_stapa_320x180.rtp  first RTP payload of an H.264 keyframe from aiortc's
                        libx264 encoder (constrained baseline): a STAP-A with
                        SPS + PPS (RFC 6184 5.7.1); 180 lines need cropping
  h264_sps_high_1280x720.nal  the SPS NAL unit (header byte included) that
                        libx264 writes for High profile 1280x720 (exercises
                        chroma_format_idc and frame cropping paths)
  h264_sps_baseline_640x360.nal  likewise, Baseline 640x360

Usage: /usr/bin/python3 make_codec_fixtures.py  (writes next to itself)
"""
import fractions
import os

import av
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder

HERE = os.path.dirname(os.path.abspath(__file__))


def frame(w, h, pts):
    f = av.VideoFrame(width=w, height=h, format="yuv420p")
    for p in f.planes:
        p.update(bytes([(pts * 7) % 256]) * p.buffer_size)
    f.pts = pts * 3000
    f.time_base = fractions.Fraction(1, 90000)
    return f


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as fh:
        fh.write(data)
    print(name, len(data))


def sps_of(profile, w, h):
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height = w, h
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, 30)
    codec.options = {"profile": profile, "tune": "zerolatency"}
    data = b""
    for pts in range(3):
        for pkt in codec.encode(frame(w, h, pts)):
            data += bytes(pkt)
    for nal in data.split(b"\x00\x00\x01"):
        nal = nal.rstrip(b"\x00")
        if nal and nal[0] & 0x1F == 7:
            return nal
    raise SystemExit("no SPS from libx264")


def main():
    vp8 = Vp8Encoder()
    key, _ = vp8.encode(frame(176, 144, 0))
    delta, _ = vp8.encode(frame(176, 144, 1))
    write("vp8_key_176x144.rtp", key[0])
    write("vp8_delta_176x144.rtp", delta[0])
    h264 = H264Encoder()
    payloads, _ = h264.encode(frame(320, 180, 0))
    assert payloads[0][0] & 0x1F == 24, "expected a STAP-A first"
    write("h264_stapa_320x180.rtp", payloads[0])
    write("h264_sps_high_1280x720.nal", sps_of("high", 1280, 720))
    write("h264_sps_baseline_640x360.nal", sps_of("baseline", 640, 360))


if __name__ == "__main__":
    main()
