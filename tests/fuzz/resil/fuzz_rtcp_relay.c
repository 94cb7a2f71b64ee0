/*
 * libFuzzer harness for the relay's per-type RTCP handling
 * (gateway/md_relay.c): SR and RR report blocks (RTT, clock mapping,
 * translation to the other leg), SDES/BYE/APP, RTPFB (NACK answered from
 * the retransmission buffer, other FMTs), PSFB (PLI, FIR, REMB and other
 * AFB), reduced-size and compound packets, and RTP that fills the buffer.
 * Two legs of a real md_bridge are set up as the worker would after DTLS
 * (relay state from md_relay_leg_prepare, SRTP contexts, an ICE agent bound
 * to 127.0.0.1 that never connects, so nothing is sent); each input is
 * SRTP-protected with the tablet's keys and handed to md_relay_incoming, as
 * if it had arrived on the tablet's transport.  The first byte picks RTP or
 * RTCP (so RTP can fill the NACK buffer first); the rest is the packet.
 * Replayed from tests/fuzz/resil/corpus/rtcp_relay.
 */
#include "md_ice.h"
#include "md_bridge.h"
#include "md_srtp.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static md_bridge_host host;
static md_bridge session;
static md_srtp *tablet_out; /* the tablet's sending context */

static const uint8_t key[16] = "madoguchi-fuzz-k";
static const uint8_t salt[14] = "madoguchi-salt";

static void set_up(void)
{
    static md_ice_callbacks no_callbacks;
    md_ice_options opt = {.bind_address = "127.0.0.1"};
    if (md_srtp_init() < 0)
        abort();
    host.ctx = g_main_context_new();
    host.cfg.max_packet = 1500;
    host.cfg.nack_packets = 512;
    host.cfg.nack_min_ms = 200;
    host.cfg.nack_max_ms = 1000;
    host.cfg.keyframe_interval_ms = 1000;
    session.host = &host;
    session.id = "fuzz";
    for (int i = 0; i < 2; i++) {
        md_leg_ctx *leg = &session.legs[i];
        leg->session = &session;
        leg->which = (md_leg)i;
        leg->rtt_ms = -1;
        leg->state = MD_LEG_CONNECTED;
        leg->ice_connected = leg->ever_connected = true;
        leg->choice.audio_pt = 111;
        leg->choice.video_pt = 96;
        leg->choice.audio_feedback = 0;
        leg->choice.video_feedback =
            MD_SDP_FB_NACK | MD_SDP_FB_PLI | MD_SDP_FB_FIR | MD_SDP_FB_REMB;
        leg->choice.remote_audio_ssrc = i ? 0x2000 : 0x1000;
        leg->choice.remote_video_ssrc = i ? 0x2001 : 0x1001;
        leg->choice.rtcp_rsize = i == 1;
        if (md_relay_leg_prepare(leg, &host.cfg) < 0 ||
            md_srtp_new(MD_SRTP_AES128_CM_SHA1_80, false, key, salt, &leg->srtp_in) < 0 ||
            md_srtp_new(MD_SRTP_AES128_CM_SHA1_80, true, key, salt, &leg->srtp_out) < 0 ||
            md_ice_new(host.ctx, &opt, &no_callbacks, NULL, &leg->ice) < 0)
            abort();
    }
    if (md_srtp_new(MD_SRTP_AES128_CM_SHA1_80, true, key, salt, &tablet_out) < 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[2048];
    if (!host.ctx)
        set_up();
    if (size < 2 || size - 1 > 1400)
        return 0;
    size_t len = size - 1;
    memcpy(buf, data + 1, len);
    int r = (data[0] & 1) ? md_srtp_protect_rtcp(tablet_out, buf, &len, sizeof(buf))
                          : md_srtp_protect_rtp(tablet_out, buf, &len, sizeof(buf));
    if (r < 0)
        return 0; /* libsrtp refuses what is not even a header */
    md_relay_incoming(&session.legs[MD_LEG_TABLET], buf, len);
    /* Let the agent's sources run, as the worker loop would. */
    while (g_main_context_iteration(host.ctx, FALSE))
        ;
    return 0;
}
